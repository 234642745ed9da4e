"""Run a command on a pseudo-terminal and type a secret at each passphrase prompt.

age reads passphrases from a terminal only, never from stdin or a flag, and fluxstrap asks at a
terminal too: this is the user typing. argv: SECRET_FILE COMMAND [ARG...]; the secret is the
file's first line. The terminal's output goes to stderr; the exit status is the command's.
"""
import os
import pty
import select
import sys
import time

secret = open(sys.argv[1], encoding="utf-8").read().splitlines()[0]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
seen = b""
answered = 0
while True:
    try:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
    # A prompt is an unfinished line that names the passphrase and ends in a colon; a status
    # line that mentions one ends in a newline and is not answered.
    pending = seen[answered:]
    line = pending.rsplit(b"\n", 1)[-1]
    if b"passphrase" in line.lower() and line.rstrip().endswith(b":"):
        answered = len(seen)
        # age turns echo off just after printing its prompt: type as a person would, a moment later.
        time.sleep(0.3)
        os.write(fd, secret.encode() + b"\r")
_, status = os.waitpid(pid, 0)
sys.stderr.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
