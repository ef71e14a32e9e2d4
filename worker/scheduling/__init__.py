"""Flow control shared by every replica through Redis: type leases and rate limits, pause, the
queue's order (priorities with aging), and bulk fan-out."""
