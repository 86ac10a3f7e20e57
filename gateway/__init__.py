"""Edges of the exchange: the command-line entry point, and (later) the WebSocket and HTTP servers.

The gateway never changes engine state except by submitting commands through the sequencer.
"""
