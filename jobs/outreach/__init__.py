"""Outreach after approval: the draft's state and its approval, the at-most-once send over SMTP,
the suppression list, and inbound replies."""
