"""The loopback Telegram Bot API emulator behind tests/telegram_emulator.py."""
