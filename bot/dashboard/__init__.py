"""The web dashboard for coaches and admins: figures, broadcasts, tickets, and for admins
exports, roles and the audit trail. See :mod:`bot.dashboard.site`."""
