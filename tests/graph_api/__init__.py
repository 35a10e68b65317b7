"""The loopback WhatsApp Cloud API emulator behind tests/graph_emulator.py."""
