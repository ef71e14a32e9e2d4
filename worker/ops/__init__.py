"""The operations a person can take on the queue, one function each, for both doors.

The CLI and the console only parse, check the caller's role, call one of these and render its
answer: the same checks and the same messages whichever door is used. Every answer is read back
from Redis after the action, and every action is written to the audit log with its actor.
"""
