#!/usr/bin/python3
"""Runs a systemd service's ExecStartPre= and ExecStart= commands the way
systemd would, for machines where systemd is not PID 1 (containers, CI).

It applies what of the unit's [Service] section can be applied without a
service manager, and fails loudly on anything it does not understand:

  User= Group= SupplementaryGroups= UMask= Environment= WorkingDirectory=
  StateDirectory= LogsDirectory= RuntimeDirectory= and their *Mode=
                                        (created and owned as systemd does,
                                         with $STATE_DIRECTORY etc. set)
  NoNewPrivileges= CapabilityBoundingSet=
  ProtectSystem=strict ReadWritePaths= ProtectHome= PrivateTmp=
  ProtectProc= ProcSubset=              (in a private mount namespace)
  SystemCallFilter= SystemCallArchitectures=native RestrictAddressFamilies=
                                        (one seccomp filter, python3-seccomp)
  Type=notify WatchdogSec=              ($NOTIFY_SOCKET and $WATCHDOG_USEC;
                                         every datagram is written to --notify-log)

The syscall filter is stricter than systemd's: a call outside the unit's
SystemCallFilter= kills the service with SIGSYS whatever
SystemCallErrorNumber= says, so that the test sees it.
Not applied (they need the service manager or cgroups): DevicePolicy=,
DeviceAllow=, PrivateDevices=, PrivateUsers=, PrivateIPC=, Restart=,
the Protect{Kernel*,ControlGroups,Hostname,Clock}= switches and
RestrictNamespaces=; they are listed on stderr at start.

Usage: unit-exec.py UNIT [--set KEY=VALUE]... [--notify-log FILE] [--pid-file FILE]
--set replaces KEY in [Service], as a drop-in would (e.g. WatchdogSec=2s).
SIGTERM or SIGINT to this process stops the service (SIGTERM to it) and
exits with the service's status; it exits when the service exits.
"""

import ctypes
import ctypes.util
import grp
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import threading

import seccomp

APPLIED = {
    "Type", "NotifyAccess", "ExecStartPre", "ExecStart", "User", "Group", "SupplementaryGroups",
    "UMask", "Environment", "WorkingDirectory", "StateDirectory", "StateDirectoryMode",
    "LogsDirectory", "LogsDirectoryMode", "RuntimeDirectory", "RuntimeDirectoryMode",
    "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem",
    "ReadWritePaths", "ProtectHome", "PrivateTmp", "ProtectProc", "ProcSubset",
    "SystemCallFilter", "SystemCallArchitectures", "SystemCallErrorNumber",
    "RestrictAddressFamilies", "WatchdogSec", "PrivateMounts",
}
# Meaningful only under a service manager; named on stderr, not applied.
NOT_APPLIED = {
    "ExecReload", "Restart", "RestartSec", "RestartPreventExitStatus", "TimeoutStopSec",
    "DevicePolicy", "DeviceAllow", "PrivateDevices", "PrivateUsers", "PrivateIPC", "ProtectClock",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
    "ProtectHostname", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC",
}

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
AF_MAX = 46


def die(msg):
    sys.stderr.write("unit-exec: %s\n" % msg)
    sys.exit(2)


def check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def mount(src, target, fstype, flags, data=None):
    check(libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                     ctypes.c_ulong(flags), data.encode() if data else None), "mount %s" % target)


def parse_unit(path):
    """The [Service] section as {key: [values in order]}."""
    service, section = {}, None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]":
                continue
            if "=" not in line:
                die("%s:%d: not KEY=VALUE" % (path, n))
            key, value = line.split("=", 1)
            key = key.strip()
            if key not in APPLIED and key not in NOT_APPLIED:
                die("%s:%d: %s is not known to unit-exec.py; teach it or list it as not applied" % (path, n, key))
            service.setdefault(key, []).append(value.strip())
    return service


def one(service, key, default=None):
    return service.get(key, [default])[-1]


def yes(service, key):
    return (one(service, key, "no") or "no").lower() in ("yes", "true", "1", "on")


def seconds(text):
    text = text.strip()
    for suffix, mult in (("ms", 0.001), ("min", 60), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * mult
    return float(text)


_groups = {}


def expand(name):
    """The syscalls of a systemd syscall group (@name) or a single syscall."""
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        calls = set()
        for line in out[1:]:
            line = line.strip()
            if line and not line.startswith("#"):
                calls |= expand(line)
        _groups[name] = calls
    return _groups[name]


def allowed_syscalls(service):
    """SystemCallFilter= lines in order: the first sets allow- or deny-list mode."""
    allow, mode = set(), None
    for value in service.get("SystemCallFilter", []):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        if mode is None:
            mode = "deny" if deny else "allow"
            if mode == "deny":
                die("SystemCallFilter= as a deny list is not supported by unit-exec.py")
        for n in names:
            if deny:
                allow -= expand(n)
            else:
                allow |= expand(n)
    return allow if mode else None


def address_families(service):
    values = service.get("RestrictAddressFamilies")
    if not values:
        return None
    fams = set()
    for v in values:
        if v.startswith("~"):
            die("RestrictAddressFamilies= as a deny list is not supported by unit-exec.py")
        for name in v.split():
            fams.add(getattr(socket, name))
    return fams


def load_seccomp(service):
    calls = allowed_syscalls(service)
    fams = address_families(service)
    if calls is None and fams is None:
        return
    f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    if calls is None:
        die("RestrictAddressFamilies= without SystemCallFilter= is not supported by unit-exec.py")
    for name in sorted(calls - {"socket"}):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call on this architecture
    if "socket" in calls:
        if fams is None:
            f.add_rule(seccomp.ALLOW, "socket")
        else:
            for fam in range(AF_MAX + 1):
                action = seccomp.ALLOW if fam in fams else seccomp.ERRNO(97)  # EAFNOSUPPORT
                f.add_rule(action, "socket", seccomp.Arg(0, seccomp.EQ, fam))
    f.load()


def mounts():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            yield fields[4].replace("\\040", " "), fields[5]


def sandbox_filesystem(service, state_dirs):
    protect = one(service, "ProtectSystem", "no")
    if protect not in ("no", "strict"):
        die("ProtectSystem=%s: only strict is supported by unit-exec.py" % protect)
    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    writable = list(state_dirs)
    for v in service.get("ReadWritePaths", []):
        writable += [p.lstrip("-") for p in v.split() if os.path.exists(p.lstrip("-"))]
    for p in writable:
        mount(p, p, None, MS_BIND)
    if protect == "strict":
        flagmap = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
        for target, opts in sorted(mounts()):
            if any(target == p or target.startswith(p.rstrip("/") + "/") for p in ["/dev", "/proc", "/sys"] + writable):
                continue
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            for o in opts.split(","):
                flags |= flagmap.get(o, 0)
            try:
                mount(None, target, None, flags)
            except OSError:
                pass  # a mount that vanished or is over-mounted
    if yes(service, "ProtectHome"):
        for d in ("/home", "/root", "/run/user"):
            if os.path.isdir(d):
                mount("tmpfs", d, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000")
    if yes(service, "PrivateTmp"):
        for d in ("/tmp", "/var/tmp"):
            mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    proc_opts = []
    if one(service, "ProtectProc", "default") != "default":
        proc_opts.append("hidepid=" + one(service, "ProtectProc"))
    if one(service, "ProcSubset", "all") != "all":
        proc_opts.append("subset=" + one(service, "ProcSubset"))
    if proc_opts:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ",".join(proc_opts))


DIRECTORIES = (("State", "/var/lib"), ("Logs", "/var/log"), ("Runtime", "/run"))


def make_state_dirs(service, uid, gid):
    dirs = []
    for kind, base in DIRECTORIES:
        mode = int(one(service, kind + "DirectoryMode", "0755"), 8)
        for v in service.get(kind + "Directory", []):
            for name in v.split():
                d = os.path.join(base, name)
                os.makedirs(d, exist_ok=True)
                os.chown(d, uid, gid)
                os.chmod(d, mode)
                dirs.append(d)
    return dirs


def environment(service):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for kind, base in DIRECTORIES:
        names = [n for v in service.get(kind + "Directory", []) for n in v.split()]
        if names:
            env[kind.upper() + "_DIRECTORY"] = ":".join(os.path.join(base, n) for n in names)
    for v in service.get("Environment", []):
        for item in shlex.split(v):
            k, _, val = item.partition("=")
            env[k] = val
    return env


def child_setup(service, user, groups, state_dirs, env):
    """Runs in the forked child before exec: the sandbox, then the identity,
    then no new privileges and the seccomp filter, the last step before exec."""
    sandbox_filesystem(service, state_dirs)
    if "CapabilityBoundingSet" in service and one(service, "CapabilityBoundingSet") == "":
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups(groups)
    os.setgid(user.pw_gid if not one(service, "Group") else grp.getgrnam(one(service, "Group")).gr_gid)
    os.setuid(user.pw_uid)
    os.umask(int(one(service, "UMask", "0022"), 8))
    os.chdir(one(service, "WorkingDirectory", "/"))
    if yes(service, "NoNewPrivileges") or "SystemCallFilter" in service:
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if (one(service, "SystemCallArchitectures") or "native") != "native":
        die("SystemCallArchitectures= other than native is not supported by unit-exec.py")
    load_seccomp(service)


def spawn(service, command, user, groups, state_dirs, env):
    argv = shlex.split(command)
    ignore_failure = False
    while argv and argv[0][:1] in "-@+!:":
        if argv[0][0] == "-":
            ignore_failure = True
        if argv[0][0] in "+!":
            die("%s: the %s prefix is not supported by unit-exec.py" % (command, argv[0][0]))
        argv[0] = argv[0][1:]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            env = dict(env)
            if "WATCHDOG_USEC" in env:
                env["WATCHDOG_PID"] = str(os.getpid())
            child_setup(service, user, groups, state_dirs, env)
            os.execve(argv[0], argv, env)
        except BaseException as e:  # report to the parent, never return into its code
            os.write(w, ("%s: %s" % (argv[0], e)).encode())
            os._exit(127)
    os.close(w)
    err = os.read(r, 4096).decode()
    os.close(r)
    if err:
        os.waitpid(pid, 0)
        die("could not start %s" % err)
    return pid, ignore_failure


def describe(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        extra = " (a system call outside SystemCallFilter=; find it with strace -f)" if sig == signal.SIGSYS else ""
        return "killed by %s%s" % (signal.Signals(sig).name, extra), 128 + sig
    code = os.WEXITSTATUS(status)
    return "exit status %d" % code, code


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    unit, notify_log, pid_file, sets = args[0], None, None, []
    i = 1
    while i < len(args):
        if args[i] == "--set":
            sets.append(args[i + 1].split("=", 1))
            i += 2
        elif args[i] == "--notify-log":
            notify_log = args[i + 1]
            i += 2
        elif args[i] == "--pid-file":
            pid_file = args[i + 1]
            i += 2
        else:
            die("unknown option %s" % args[i])
    service = parse_unit(unit)
    for key, value in sets:
        service[key] = [value]
    skipped = sorted(k for k in service if k in NOT_APPLIED)
    if skipped:
        sys.stderr.write("unit-exec: %s: not applied without systemd: %s\n" % (os.path.basename(unit), " ".join(skipped)))
    user = pwd.getpwnam(one(service, "User", "root"))
    gid = grp.getgrnam(one(service, "Group")).gr_gid if one(service, "Group") else user.pw_gid
    groups = [gid]
    for v in service.get("SupplementaryGroups", []):
        groups += [grp.getgrnam(g).gr_gid for g in v.split()]
    state_dirs = make_state_dirs(service, user.pw_uid, gid)
    env = environment(service)

    notify = None
    if one(service, "Type", "simple") == "notify":
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = "\0bbt-unit-exec-%d" % os.getpid()
        notify.bind(name)
        env["NOTIFY_SOCKET"] = "@" + name[1:]
        log = open(notify_log or os.devnull, "a", buffering=1)

        def relay():
            while True:
                data = notify.recv(4096)
                for line in data.decode(errors="replace").splitlines():
                    log.write(line + "\n")

        threading.Thread(target=relay, daemon=True).start()
    if one(service, "WatchdogSec"):
        env["WATCHDOG_USEC"] = str(int(seconds(one(service, "WatchdogSec")) * 1000000))

    for command in service.get("ExecStartPre", []):
        pid, ignore = spawn(service, command, user, groups, state_dirs, env)
        _, status = os.waitpid(pid, 0)
        text, code = describe(status)
        if code != 0 and not ignore:
            sys.stderr.write("unit-exec: ExecStartPre=%s: %s\n" % (command, text))
            return code
    starts = service.get("ExecStart", [])
    if len(starts) != 1:
        die("exactly one ExecStart= expected")
    pid, _ = spawn(service, starts[0], user, groups, state_dirs, env)
    if pid_file:
        with open(pid_file, "w") as f:
            f.write("%d\n" % pid)

    def forward(signum, frame):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status = os.waitpid(pid, 0)
    text, code = describe(status)
    sys.stderr.write("unit-exec: %s: %s\n" % (starts[0], text))
    return code


if __name__ == "__main__":
    sys.exit(main())
