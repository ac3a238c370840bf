"""Parse an rclone command line: subcommand, source and destination, config file, user agent and flags.

rclone's command line is ``rclone [flags] subcommand [flags] args...``, with
flags allowed before and after the subcommand (rclone uses the pflag
library). A boolean flag never takes the next argument, while a flag with a
value takes it unless written as ``--name=value``. Only a few hundred of
rclone's flags are known here. An unknown flag is resolved by the
subcommand's arity: ``copy`` and ``sync`` take exactly a source and a
destination, so a third positional argument is the value of an unknown flag
before it.

A source or destination is a local path or ``remote:path``. A remote is a
name from the config file, an on-the-fly backend (``:s3:bucket/key``), or
either with options (``remote,option=value:path``). On Windows a single
letter before the colon is a drive letter, so ``C:\\data`` is local.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from proxyhunt.process.cmdline import looks_like_windows, split_command_line

# Subcommands of rclone 1.6x, for recognizing a renamed binary by its command line.
SUBCOMMANDS: frozenset[str] = frozenset(
    """about authorize backend bisync cat check checksum cleanup completion config copy copyto copyurl
    cryptcheck cryptdecode dedupe delete deletefile genautocomplete gendocs gitannex hashsum help link
    listremotes ls lsd lsf lsjson lsl md5sum mkdir mount move moveto ncdu nfsmount obscure purge rc rcat
    rcd rmdir rmdirs selfupdate serve settier sha1sum size sync test touch tree version""".split()
)

# Subcommands whose two positional arguments are a source and a destination.
_TRANSFER = frozenset({"copy", "sync", "move", "copyto", "moveto", "bisync", "check", "cryptcheck", "copyurl"})
# Subcommands whose single positional argument is written to.
_DESTINATION_ONLY = frozenset({"rcat", "mkdir", "touch"})
# Subcommands whose first positional argument names something else (a protocol, a hash
# or a backend command) before the remote.
_QUALIFIED = frozenset({"serve", "hashsum", "backend"})

# Positional arguments each subcommand takes, used to resolve unknown flags.
_ARITY: dict[str, int] = {
    **{name: 2 for name in _TRANSFER},
    **{name: 1 for name in _DESTINATION_ONLY},
    **{name: 1 for name in ("ls", "lsd", "lsl", "lsf", "lsjson", "size", "cat", "md5sum", "sha1sum", "tree",
                            "ncdu", "about", "delete", "deletefile", "purge", "rmdir", "rmdirs", "cleanup", "link")},
    **{name: 2 for name in _QUALIFIED | {"mount", "nfsmount"}},
}

# Global flags that take a value (rclone 1.6x), so the next argument belongs to them.
VALUE_FLAGS: frozenset[str] = frozenset(
    """--config --user-agent --backup-dir --suffix --transfers --checkers --bwlimit --bwlimit-file --log-file
    --log-level --log-format --stats --stats-log-level --stats-unit --include --exclude --filter --include-from
    --exclude-from --filter-from --files-from --files-from-raw --exclude-if-present --max-age --min-age
    --max-size --min-size --max-depth --max-transfer --max-duration --max-backlog --cutoff-mode --compare-dest
    --copy-dest --order-by --retries --retries-sleep --low-level-retries --multi-thread-streams
    --multi-thread-cutoff --multi-thread-chunk-size --tpslimit --tpslimit-burst --timeout --contimeout
    --expect-continue-timeout --buffer-size --header --header-upload --header-download --ca-cert --client-cert
    --client-key --bind --password-command --cache-dir --temp-dir --dump --track-renames-strategy --modify-window
    --rc-addr --rc-user --rc-pass --rc-htpasswd --addr --user --pass --htpasswd --vfs-cache-mode
    --vfs-cache-max-age --vfs-cache-max-size --vfs-read-chunk-size --dir-cache-time --poll-interval
    --volname --metadata-set --streaming-upload-cutoff --conflict-resolve --conflict-loser --conflict-suffix
    --compare --workdir --max-delete --max-lock --backup-dir1 --backup-dir2 --hash --format --separator
    --dirs-only-filter --checksum-file --download-dir""".split()
)

# Global boolean flags (rclone 1.6x): they never take the next argument.
BOOLEAN_FLAGS: frozenset[str] = frozenset(
    """--ask-password --auto-confirm --check-first --checksum --create-empty-src-dirs --delete-after
    --delete-before --delete-during --delete-excluded --delete-empty-src-dirs --disable-http2 --dry-run
    --error-on-no-transfer --fast-list --human-readable --ignore-case --ignore-case-sync --ignore-checksum
    --ignore-errors --ignore-existing --ignore-size --ignore-times --immutable --inplace --interactive --links
    --copy-links --log-systemd --use-json-log --metadata --no-check-certificate --no-check-dest --no-console
    --no-gzip-encoding --no-traverse --no-unicode-normalization --no-update-modtime --no-update-dir-modtime
    --one-file-system --progress --progress-terminal-title --quiet --refresh-times --server-side-across-configs
    --size-only --stats-one-line --stats-one-line-date --suffix-keep-extension --track-renames --update
    --use-cookies --use-mmap --use-server-modtime --verbose --files-only --dirs-only --recursive --resync
    --allow-non-empty --allow-other --allow-root --read-only --daemon --json --full --rc --rc-no-auth
    --rc-web-gui --rc-serve --s3-no-check-bucket --s3-env-auth --s3-v2-auth --s3-use-accelerate-endpoint
    --drive-acknowledge-abuse --drive-shared-with-me --drive-use-trash --drive-skip-gdocs --b2-hard-delete
    --azureblob-use-msi --azureblob-env-auth --sftp-use-insecure-cipher --sftp-disable-hashcheck --ftp-tls
    --ftp-explicit-tls --ftp-no-check-certificate --webdav-unix-socket --local-no-check-updated --help
    --create-empty-dirs --force --remove-empty-dirs --check-access --check-sync --no-cleanup
    --ignore-listing-checksum --resilient --recover --verbose-cached --download --combined""".split()
)

# Short flags of rclone 1.6x are all boolean: -c -I -i -L -l -M -n -P -q -u -v -x.

# Backend names whose flags (--<backend>-<option>) mark a command line as rclone's.
_BACKENDS = (
    "s3 drive b2 dropbox onedrive mega box pcloud sftp ftp webdav swift azureblob azurefiles gcs "
    "googlephotos hdfs jottacloud koofr mailru opendrive pikpak protondrive putio qingstor seafile sharefile "
    "sia smb storj sugarsync yandex zoho crypt chunker union combine hasher alias compress fichier filefabric "
    "gofile iclouddrive internetarchive linkbox netstorage oos quatrix ulozto"
).split()
_BACKEND_FLAG = re.compile(r"^--(" + "|".join(_BACKENDS) + r")-[a-z0-9-]+$")

# Global flags that few programs other than rclone have.
_DISTINCTIVE_FLAGS = frozenset(
    """--transfers --checkers --backup-dir --bwlimit --fast-list --max-transfer --multi-thread-streams
    --user-agent --track-renames --create-empty-src-dirs --use-server-modtime --no-check-dest --tpslimit
    --low-level-retries --stats-one-line --delete-excluded --s3-no-check-bucket --drive-acknowledge-abuse""".split()
)

# Option names that carry a credential, as a flag suffix (--ftp-pass) or a connection-string
# option (:ftp,user=alice,pass=...:).
CREDENTIAL_OPTIONS = frozenset(
    {"user", "pass", "password", "key", "account", "access-key-id", "secret-access-key", "session-token",
     "token", "client-secret", "sas-url", "service-account-credentials", "bearer-token"}
)

# A remote name: letters, digits and _ - . + @ and space (rclone 1.6x), or ':' and a backend
# for an on-the-fly remote.
_REMOTE = re.compile(r"^(:?[\w.+@ -]+?)(,[^:]*)?:(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Endpoint:
    """A source or destination argument: a local path, or a remote with a path.

    ``bucket`` is the first segment of a remote's path, which is the bucket
    (or container) for object stores such as S3, Azure Blob and GCS, and the
    top directory for others.
    """

    raw: str
    remote: str | None = None
    path: str | None = None
    bucket: str | None = None
    options: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.remote is not None


@dataclass(frozen=True)
class Flag:
    """One flag as given: ``--transfers=8`` is ``Flag("--transfers", "8")``, ``-P`` is ``Flag("-P", None)``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        if self.value is None:
            return self.name
        value = f'"{self.value}"' if re.search(r"\s", self.value) else self.value
        return f"{self.name}={value}"


@dataclass(frozen=True)
class RcloneCommand:
    """An rclone command line taken apart. ``notes`` lists what the parser had to guess."""

    program: str
    subcommand: str | None
    arguments: tuple[str, ...] = ()
    source: Endpoint | None = None
    destination: Endpoint | None = None
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def flag_value(self, name: str) -> str | None:
        """Return the value of the last ``name`` flag (rclone keeps the last one), or None."""
        values = [flag.value for flag in self.flags if flag.name == name]
        return values[-1] if values else None

    @property
    def config(self) -> str | None:
        return self.flag_value("--config")

    @property
    def user_agent(self) -> str | None:
        return self.flag_value("--user-agent")

    @property
    def flags_text(self) -> str:
        """The flags as one string, such as ``--backup-dir=s3:old --transfers=8 -P``, for Sigma ``contains``."""
        return " ".join(str(flag) for flag in self.flags)

    @property
    def credential_flags(self) -> tuple[str, ...]:
        """Flags and connection-string options that put a credential on the command line."""
        found = [flag.name for flag in self.flags if is_credential_flag(flag.name)]
        for endpoint in (self.source, self.destination):
            if endpoint and endpoint.options:
                for option in _split_options(endpoint.options):
                    if option.split("=", 1)[0].strip().replace("_", "-").lower() in CREDENTIAL_OPTIONS:
                        found.append(f"{endpoint.remote},{option.split('=', 1)[0].strip()}")
        return tuple(found)

    @property
    def has_distinctive_flag(self) -> bool:
        return any(flag.name in _DISTINCTIVE_FLAGS or _BACKEND_FLAG.match(flag.name) for flag in self.flags)


def is_credential_flag(name: str) -> bool:
    """True for flags such as ``--user``, ``--ftp-pass`` or ``--s3-secret-access-key``."""
    bare = name.lstrip("-").lower()
    if bare in CREDENTIAL_OPTIONS:
        return True
    match = _BACKEND_FLAG.match(name.lower())
    return bool(match) and bare[len(match.group(1)) + 1 :] in CREDENTIAL_OPTIONS


def parse_endpoint(text: str, windows: bool) -> Endpoint:
    """Parse a source or destination argument into remote, path and bucket.

    A URL (``https://host/...``) and, on Windows, a drive letter (``C:\\x``)
    are local to rclone's parser, so they get no remote.
    """
    match = _REMOTE.match(text)
    if not match or "/" in match.group(1) or "\\" in match.group(1):
        return Endpoint(raw=text)

    remote, options, path = match.group(1), match.group(2), match.group(3)
    if path.startswith("//"):
        return Endpoint(raw=text)
    if windows and len(remote) == 1 and remote.isalpha():
        return Endpoint(raw=text)

    stripped = path.strip("/")
    bucket = stripped.split("/", 1)[0] if stripped else None
    return Endpoint(raw=text, remote=remote, path=path, bucket=bucket, options=options[1:] if options else None)


def parse_rclone(argv: list[str] | tuple[str, ...], windows: bool = False) -> RcloneCommand:
    """Parse an rclone argument vector (program name first) into an ``RcloneCommand``."""
    if not argv:
        return RcloneCommand(program="", subcommand=None, notes=("empty command line",))

    flags, positionals = _scan(list(argv[1:]))
    notes: list[str] = []
    subcommand_index = _find_subcommand(positionals)
    if subcommand_index is None:
        return RcloneCommand(program=argv[0], subcommand=None, arguments=tuple(p.text for p in positionals),
                             flags=_resolved_flags(flags, positionals), notes=("no rclone subcommand found",))

    # Arguments before the subcommand can only be values of unknown flags.
    for position in positionals[:subcommand_index]:
        if position.claimed_by is not None:
            position.claim()
    subcommand = positionals[subcommand_index].text
    rest = positionals[subcommand_index + 1 :]

    expected = _ARITY.get(subcommand)
    if expected is not None:
        for position in rest:
            if len([p for p in rest if not p.claimed]) <= expected:
                break
            if position.claimed_by is not None:
                position.claim()
    arguments = [p.text for p in rest if not p.claimed]
    if expected is not None and len(arguments) != expected:
        notes.append(f"'{subcommand}' takes {expected} arguments but {len(arguments)} were found")

    source, destination = _endpoints(subcommand, arguments, windows)
    return RcloneCommand(
        program=argv[0],
        subcommand=subcommand,
        arguments=tuple(arguments),
        source=source,
        destination=destination,
        flags=_resolved_flags(flags, positionals),
        notes=tuple(notes),
    )


def parse_command_line(command_line: str, image: str | None = None) -> RcloneCommand:
    """Split a logged command line (by the Windows rules when the program is a Windows path) and parse it."""
    windows = looks_like_windows(command_line, image)
    return parse_rclone(split_command_line(command_line, windows), windows=windows)


@dataclass
class _Positional:
    """A positional argument, which may turn out to be the value of the unknown flag before it."""

    text: str
    claimed_by: int | None
    claimed: bool = False

    def claim(self) -> None:
        self.claimed = True


def _scan(tokens: list[str]) -> tuple[list[list[str | None]], list[_Positional]]:
    """Split tokens into flags ([name, value]) and positional arguments, in order."""
    flags: list[list[str | None]] = []
    positionals: list[_Positional] = []
    pending_unknown: int | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "--":
            positionals.extend(_Positional(rest, None) for rest in tokens[index:])
            break
        if token.startswith("--") and len(token) > 2:
            name, equals, value = token.partition("=")
            if equals:
                flags.append([name, value])
                pending_unknown = None
            elif name in VALUE_FLAGS and index < len(tokens):
                flags.append([name, tokens[index]])
                index += 1
                pending_unknown = None
            else:
                flags.append([name, None])
                known = name in BOOLEAN_FLAGS or name in VALUE_FLAGS
                pending_unknown = None if known else len(flags) - 1
            continue
        if token.startswith("-") and len(token) > 1:
            flags.append([token, None])
            pending_unknown = None
            continue
        positionals.append(_Positional(token, pending_unknown))
        pending_unknown = None
    return flags, positionals


def _find_subcommand(positionals: list[_Positional]) -> int | None:
    """Return the index of the subcommand: the first positional argument that is not an unknown flag's value."""
    for index, position in enumerate(positionals):
        if position.text in SUBCOMMANDS or position.claimed_by is None:
            return index
    return 0 if positionals else None


def _resolved_flags(flags: list[list[str | None]], positionals: list[_Positional]) -> tuple[Flag, ...]:
    for position in positionals:
        if position.claimed and position.claimed_by is not None:
            flags[position.claimed_by][1] = position.text
    return tuple(Flag(str(name), value) for name, value in flags)


def _endpoints(subcommand: str, arguments: list[str], windows: bool) -> tuple[Endpoint | None, Endpoint | None]:
    def endpoint(index: int) -> Endpoint | None:
        return parse_endpoint(arguments[index], windows) if index < len(arguments) else None

    if subcommand in _TRANSFER:
        return endpoint(0), endpoint(1)
    if subcommand in _DESTINATION_ONLY:
        return None, endpoint(0)
    if subcommand in _QUALIFIED:
        return endpoint(1), None
    if subcommand in _ARITY or subcommand in ("mount", "nfsmount"):
        return endpoint(0), None
    return None, None


def _split_options(options: str) -> list[str]:
    """Split ``a=1,b='x,y'`` at the commas outside quotes."""
    return [part for part in re.findall(r"(?:[^,'\"]|'[^']*'|\"[^\"]*\")+", options) if part]
