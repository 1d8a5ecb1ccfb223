"""After every attack: the server wrote nothing outside its state dir and never served /etc/passwd.

Contract: the server's HOME and TMPDIR (both private to it here) hold no file outside the
configured state dir (which lies in HOME, where chulcheo keeps it by default; the server puts
Gradio's upload folder inside it), and no response of the whole suite held "root:x:0:0".
Runs last (conftest.MODULE_ORDER), without the `live` repair: it reads the server's folders only.
"""

from __future__ import annotations

import pytest

from tests.security.live import LiveServer

pytestmark = pytest.mark.security


def test_no_file_outside_the_state_dir(server: LiveServer):
    stray = server.outside_state()
    shown = "\n".join(f"  {p.relative_to(server.base)}" for p in stray[:40])
    assert not stray, (f"{len(stray)} file(s) in the server's HOME/TMPDIR outside its state dir "
                       f"({server.state_dir.relative_to(server.base)}):\n{shown}")


def test_no_response_held_etc_passwd(server: LiveServer):
    assert not server.passwd_seen, "responses with /etc/passwd content:\n" + "\n".join(server.passwd_seen[:20])
