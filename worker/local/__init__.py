"""Local stand-ins for the demo and the tests: an embedded Redis and an SMTP sink on loopback."""
