# C types for ops.py (Cython reads this file when setup.py compiles the module).
#
# Why: every order's reply is an OrderReply, made when its frame is read, asked for its view
# when the command is applied and called when it is journaled. Compiled as plain classes,
# ops.py ran no faster (session 11); with the replies as extension types their fields are C
# members. The rest of the module runs compiled as it is.

cdef class Reply:
    cdef public object session, request_id, metrics
    cdef public bint sent

cdef class OrderReply(Reply):
    cdef public object render, cmd, op
    cdef public double started
