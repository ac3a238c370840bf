"""Split a logged command line into its argument vector, by the Windows or the POSIX shell rules.

Windows passes a process one string, and each program splits it. Nearly every
program, rclone's Go runtime included, follows the Microsoft C runtime rules
that ``CommandLineToArgvW`` implements, so those are the rules used here for
Windows command lines. Linux logs the argument vector itself (auditd
``EXECVE``), but some exports join it with spaces, and those are split by the
POSIX shell rules.
"""

from __future__ import annotations

import re
import shlex

# A Windows path: a drive letter, a UNC path, or a backslash anywhere in the program.
_WINDOWS_PATH = re.compile(r"^\"?([A-Za-z]:[\\/]|\\\\)|^[^\s\"]*\\")


def looks_like_windows(command_line: str | None, image: str | None = None) -> bool:
    """True when the program, or the start of the command line, is a Windows path."""
    for text in (image, command_line):
        if text and _WINDOWS_PATH.search(text.lstrip()):
            return True
    return bool(image and image.lower().endswith(".exe"))


def split_windows(command_line: str) -> list[str]:
    """Split a command line as ``CommandLineToArgvW`` does.

    The program name (the first argument) ends at the closing quote or the
    first white space, with no backslash processing. In later arguments, 2n
    backslashes before a quote become n backslashes and the quote opens or
    closes a quoted part, 2n+1 backslashes before a quote become n backslashes
    and a literal quote, and ``""`` inside a quoted part is a literal quote.
    """
    text = command_line.lstrip()
    arguments: list[str] = []
    if not text:
        return arguments

    if text.startswith('"'):
        end = text.find('"', 1)
        end = len(text) if end < 0 else end
        arguments.append(text[1:end])
        position = end + 1
    else:
        match = re.match(r"[^ \t]*", text)
        arguments.append(match.group(0))
        position = match.end()

    current: list[str] = []
    in_token = False
    quoted = False
    length = len(text)
    while position < length:
        character = text[position]
        if character in " \t" and not quoted:
            if in_token:
                arguments.append("".join(current))
                current = []
                in_token = False
            position += 1
            continue

        in_token = True
        if character == "\\":
            run_end = position
            while run_end < length and text[run_end] == "\\":
                run_end += 1
            count = run_end - position
            if run_end < length and text[run_end] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    position = run_end + 1
                else:
                    position = run_end
            else:
                current.append("\\" * count)
                position = run_end
            continue

        if character == '"':
            if quoted and position + 1 < length and text[position + 1] == '"':
                # "" inside a quoted part is a literal quote, and the part stays quoted.
                current.append('"')
                position += 2
                continue
            quoted = not quoted
            position += 1
            continue

        current.append(character)
        position += 1

    if in_token:
        arguments.append("".join(current))
    return arguments


def split_posix(command_line: str) -> list[str]:
    """Split a command line by the POSIX shell rules; an unclosed quote falls back to white space."""
    try:
        return shlex.split(command_line, posix=True)
    except ValueError:
        return command_line.split()


def split_command_line(command_line: str, windows: bool) -> list[str]:
    """Split ``command_line`` by the Windows rules when ``windows`` is true, else by the POSIX rules."""
    return split_windows(command_line) if windows else split_posix(command_line)
