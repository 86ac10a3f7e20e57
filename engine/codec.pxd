# C calls for codec.py: the order path's records are made through the field-by-field builders of
# commands.py and events.py (see codec.py).

from . cimport commands, events
