# C types for session.py (Cython reads this file when setup.py compiles the module).
#
# Why: every reply and push goes through a session (push_frame, the direct-write check, the
# in-flight count), several times per order. Compiled as a plain class, each of those
# attribute reads was a lookup in the instance's dict; here they are C members, and the
# reader (connection.pxd) calls the session's methods in C.

cdef class Session:
    # the split shape's gateway gives its sessions attributes of their own (conn_id, ...)
    cdef dict __dict__
    cdef public object link, user, roles, subs, slip, placed, _room, _queue, _on_sent, _out
    cdef public object _writer
    cdef public bint watching_orders, watching_exposure, cancel_on_disconnect, closed
    cdef public bint _writing, _direct, _flush_scheduled
    cdef public Py_ssize_t inflight, _room_below, _queue_max, _unflushed
    cdef public double sent_at
    cpdef asked(self)
    cpdef answered(self)
    cpdef bint push_frame(self, frame, op, bint droppable=*) except -1
    cpdef bint push_market(self, wire, payload) except -1
    cpdef bint _enqueue(self, frame, bint droppable) except -1
    cpdef bint _direct_room(self) except -1
    cpdef _flush(self)
