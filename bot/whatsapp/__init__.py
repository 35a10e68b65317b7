"""The WhatsApp channel (Cloud API over aiohttp): webhook in, Graph API calls out.

Kept light: :mod:`bot.config` imports :mod:`bot.whatsapp.settings`; the channel itself
(:mod:`bot.whatsapp.serve`) is imported only when WhatsApp is configured.
"""
