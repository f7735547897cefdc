#!/usr/bin/env python3
"""Asks X windows to close as a window manager does: a WM_PROTOCOLS
ClientMessage carrying WM_DELETE_WINDOW (ICCCM 4.2.8.1), sent to each
window id given. Lab tooling (scripts/lab/session-lab.sh): the user
closing xfreerdp's window, with only libX11 through ctypes.

    DISPLAY=:77 wm-close.py WINDOW_ID...
"""
import ctypes
import sys

x = ctypes.CDLL("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
x.XCloseDisplay.argtypes = [ctypes.c_void_p]


class ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


d = x.XOpenDisplay(None)
if not d:
    sys.exit("cannot open the display")
protocols = x.XInternAtom(d, b"WM_PROTOCOLS", 0)
delete = x.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
for w in sys.argv[1:]:
    e = XEvent()
    e.xclient.type = 33  # ClientMessage
    e.xclient.window = int(w)
    e.xclient.message_type = protocols
    e.xclient.format = 32
    e.xclient.data[0] = delete
    e.xclient.data[1] = 0  # CurrentTime
    x.XSendEvent(d, int(w), 0, 0, ctypes.byref(e))
x.XFlush(d)
x.XCloseDisplay(d)
