"""The X server's view of the app, for what WebDriver cannot see: whether the window is
mapped, the window manager's close request, and screenshots of the whole screen (the tray).

Needs python3-xlib (Debian), so the E2E suite runs under /usr/bin/python3.
"""
import struct
import zlib

from Xlib import X, display, error, protocol


def _windows(d, w):
    yield w
    try:
        children = w.query_tree().children
    except error.BadWindow:
        # Gone while we walked the tree (a notification or menu closing): nothing below it.
        return
    for child in children:
        yield from _windows(d, child)


def find_window(title):
    """The application's top-level X window whose title is `title` (exactly), or None. GTK
    also titles a hidden "client leader" window; only a window that takes WM_DELETE_WINDOW is
    the one a window manager would close."""
    d = display.Display()
    try:
        net_name = d.intern_atom("_NET_WM_NAME")
        utf8 = d.intern_atom("UTF8_STRING")
        for w in _windows(d, d.screen().root):
            try:
                prop = w.get_full_property(net_name, utf8)
                name = prop.value.decode() if prop else w.get_wm_name()
            except Exception:
                continue
            if name == title and d.intern_atom("WM_DELETE_WINDOW") in (w.get_wm_protocols() or []):
                return w.id
        return None
    finally:
        d.close()


def is_viewable(window_id):
    """Whether the window is mapped; a window that no longer exists is not."""
    d = display.Display()
    try:
        return d.create_resource_object("window", window_id).get_attributes().map_state == X.IsViewable
    except error.BadWindow:
        return False
    finally:
        d.close()


def request_close(window_id):
    """What a window manager sends when the user clicks the window's close button:
    a WM_PROTOCOLS client message with WM_DELETE_WINDOW."""
    d = display.Display()
    try:
        w = d.create_resource_object("window", window_id)
        protocols = d.intern_atom("WM_PROTOCOLS")
        delete = d.intern_atom("WM_DELETE_WINDOW")
        event = protocol.event.ClientMessage(window=w, client_type=protocols,
                                             data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        w.send_event(event, event_mask=X.NoEventMask)
        d.flush()
    finally:
        d.close()


def screenshot(path, region=None):
    """Saves the screen (or x, y, w, h of it) as a PNG, using only zlib."""
    d = display.Display()
    try:
        root = d.screen().root
        g = root.get_geometry()
        x, y, w, h = region or (0, 0, g.width, g.height)
        data = root.get_image(x, y, w, h, X.ZPixmap, 0xFFFFFFFF).data
    finally:
        d.close()
    rows = bytearray()
    for r in range(h):
        rows.append(0)
        line = data[r * w * 4:(r + 1) * w * 4]
        for px in range(w):
            b, g_, r_ = line[px * 4], line[px * 4 + 1], line[px * 4 + 2]
            rows += bytes((r_, g_, b))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes(rows)))
                     + chunk(b"IEND", b""))


def click(x, y, button=1):
    """A real mouse click at (x, y), through the XTEST extension."""
    from Xlib.ext import xtest
    d = display.Display()
    try:
        xtest.fake_input(d, X.MotionNotify, x=x, y=y)
        xtest.fake_input(d, X.ButtonPress, button)
        xtest.fake_input(d, X.ButtonRelease, button)
        d.sync()
    finally:
        d.close()


def key(name):
    """Presses and releases one key (an X keysym name such as "Up" or "Return")."""
    from Xlib import XK
    from Xlib.ext import xtest
    d = display.Display()
    try:
        code = d.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(d, X.KeyPress, code)
        xtest.fake_input(d, X.KeyRelease, code)
        d.sync()
    finally:
        d.close()


def popup_menus():
    """Viewable override-redirect windows: open pop-up menus."""
    d = display.Display()
    try:
        found = []
        for w in d.screen().root.query_tree().children:
            a = w.get_attributes()
            if a.override_redirect and a.map_state == X.IsViewable:
                g = w.get_geometry()
                if g.width > 20 and g.height > 20:
                    found.append((w.id, g.x, g.y, g.width, g.height))
        return found
    finally:
        d.close()


def screen_size():
    d = display.Display()
    try:
        s = d.screen()
        return s.width_in_pixels, s.height_in_pixels
    finally:
        d.close()


def tray_icon_of(pid):
    """Centre (root coordinates) of the tray icon window process `pid` owns, or None: the
    small viewable window carrying that _NET_WM_PID."""
    found = tray_icon(pid)
    return found[1] if found else None


MARK = "_KIYEOVO_E2E_MARK"


def mark(window_id):
    """Puts a property of ours on a window: a window made later under the same id (X reuses a
    departed client's ids) does not have it."""
    d = display.Display()
    try:
        w = d.create_resource_object("window", window_id)
        w.change_property(d.intern_atom(MARK), d.intern_atom("STRING"), 8, b"marked")
        d.sync()
    finally:
        d.close()


def is_marked(window_id):
    """Whether the window exists and carries the property `mark` put on it."""
    d = display.Display()
    try:
        w = d.create_resource_object("window", window_id)
        return w.get_full_property(d.intern_atom(MARK), X.AnyPropertyType) is not None
    except error.BadWindow:
        return False
    finally:
        d.close()


def tray_icon(pid):
    """(window id, centre) of the tray icon window process `pid` owns, or None."""
    d = display.Display()
    try:
        root = d.screen().root
        pid_atom = d.intern_atom("_NET_WM_PID")
        for w in _windows(d, root):
            try:
                prop = w.get_full_property(pid_atom, X.AnyPropertyType)
                if not prop or prop.value[0] != pid:
                    continue
                if w.get_attributes().map_state != X.IsViewable:
                    continue
                g = w.get_geometry()
                if g.width > 64 or g.height > 64:
                    continue
                pos = w.translate_coords(root, 0, 0)
                return (w.id, (-pos.x + g.width // 2, -pos.y + g.height // 2))
            except Exception:
                continue
        return None
    finally:
        d.close()
