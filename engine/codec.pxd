# C calls for codec.py: the order path's records are made through the field-by-field builders of
# commands.py and events.py (see codec.py), and a batch's records are put together in C.

cimport cython

from . cimport commands, events


@cython.locals(cmds=list, lists=list, records=list, i=Py_ssize_t, cmd=commands.Command)
cpdef list decode_batch(commands_data, events_data)
