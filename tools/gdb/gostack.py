"""gdb support for gostack goroutines (like Go's runtime-gdb.py).

Load it in gdb with

    source /path/to/gostack/tools/gdb/gostack.py

(or let gdb auto-load it: `make install` puts it next to the library as
libgostack.so.*-gdb.py where gdb looks for it; see README "Debugging").

Commands:
    info goroutines          every goroutine: id, state or wait reason, name, thread, where it is
    goroutine N bt           the C backtrace of goroutine N (parked or running)

The runtime publishes what this needs in one record, `gostack::sched::debug::DEBUG_INFO`
(src/sched/debug.rs, `DebugInfo`): the array of every G it ever made and the offsets of the G
fields shown here, read as raw words, so that no type information is needed (release builds
carry line tables only). A parked goroutine's saved context is the switch frame at
`G.sched.sp` (asm/offsets.h): fpctl, r15, r14, r13, r12, rbx, rbp, return address; its stack
pointer after the switch is `sched.sp + 0x40`. To show its backtrace the command loads that
context into the registers of the current thread, runs `bt`, and puts the registers back (so it
needs a live process, as Go's does).
"""

import gdb

STATUS = {0: "idle", 1: "runnable", 2: "running", 3: "waiting", 4: "dead"}
FRAME = ("fpctl", "r15", "r14", "r13", "r12", "rbx", "rbp", "pc")
FRAME_SIZE = 0x40


def _read_word(addr, size=8):
    mem = gdb.selected_inferior().read_memory(addr, size)
    return int.from_bytes(bytes(mem), "little")


def _read_bytes(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n))


DEBUG_FIELDS = ("allg", "nallg", "g_sched_sp", "g_stack_lo", "g_stack_hi", "g_goid", "g_status",
                "g_waitreason", "g_name", "g_m", "m_tid", "wait_reason_names", "n_wait_reasons")


def _debug_info():
    """The runtime's DebugInfo record: a dict of its words (see src/sched/debug.rs)."""
    out = gdb.execute("info variables ^gostack::sched::debug::DEBUG_INFO", to_string=True)
    addr = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("0x") and parts[1].startswith("gostack::sched::debug::DEBUG_INFO"):
            addr = int(parts[0], 16)
    if addr is None:
        raise gdb.GdbError("gostack::sched::debug::DEBUG_INFO not found: is libgostack.so loaded (run the "
                           "program first), and not stripped of its symbol table?")
    if _read_bytes(addr, 8) != b"gostack1":
        raise gdb.GdbError("gostack::sched::debug::DEBUG_INFO has an unknown layout: this script is for "
                           "another version of gostack")
    return {name: _read_word(addr + 8 * (i + 1)) for i, name in enumerate(DEBUG_FIELDS)}


class G:
    """One G record, read field by field through the offsets in DebugInfo."""

    def __init__(self, info, addr):
        self.info, self.addr = info, addr

    def word(self, field, size=8):
        return _read_word(self.addr + self.info[field], size)

    @property
    def goid(self):
        return self.word("g_goid")

    @property
    def status(self):
        return self.word("g_status", 4)

    @property
    def sp(self):
        return self.word("g_sched_sp")

    @property
    def waitreason(self):
        """The wait reason: a one-byte enum, named through DebugInfo's table of `&str`
        ((pointer, length) pairs)."""
        r = self.word("g_waitreason", 1)
        if r == 0 or r >= self.info["n_wait_reasons"]:
            return ""
        ptr = _read_word(self.info["wait_reason_names"] + 16 * r)
        length = _read_word(self.info["wait_reason_names"] + 16 * r + 8)
        if ptr == 0 or length == 0 or length > 256:
            return ""
        return _read_bytes(ptr, length).decode("utf-8", "replace")

    @property
    def name(self):
        boxed = self.word("g_name")
        if boxed == 0:
            return ""
        data, length = _read_word(boxed), _read_word(boxed + 8)  # CString: Box<[u8]> with its NUL
        if data == 0 or length == 0 or length > 4096:
            return ""
        return _read_bytes(data, length - 1).decode("utf-8", "replace")

    @property
    def tid(self):
        m = self.word("g_m")
        return _read_word(m + self.info["m_tid"], 4) if m else 0


def all_goroutines():
    """Every G record ever made (dead and idle ones included)."""
    info = _debug_info()
    return [G(info, p) for p in (_read_word(info["allg"] + 8 * i) for i in range(info["nallg"])) if p]


def _thread_of(tid):
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == tid:
            return t
    return None


def _saved_frame(g):
    sp = g.sp
    if sp == 0:
        return None
    return {name: _read_word(sp + 8 * i) for i, name in enumerate(FRAME)} | {"rsp": sp + FRAME_SIZE}


def _describe_pc(pc):
    block = gdb.block_for_pc(pc)
    func = block.function if block is not None else None
    while block is not None and func is None:
        block = block.superblock
        func = block.function if block is not None else None
    sal = gdb.find_pc_line(pc)
    where = func.print_name if func is not None else "0x%x" % pc
    if sal.symtab is not None:
        where += " at %s:%d" % (sal.symtab.filename, sal.line)
    return where


class _SwappedRegisters:
    """Loads a parked goroutine's saved registers into the current thread's frame 0, and restores."""

    REGS = ("pc", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15")

    def __init__(self, frame):
        self.frame = frame

    def __enter__(self):
        gdb.execute("frame 0", to_string=True)
        self.saved = {r: int(gdb.parse_and_eval("$" + r)) for r in self.REGS}
        for r in self.REGS:
            gdb.execute("set $%s = %d" % (r, self.frame[r]), to_string=True)
        return self

    def __exit__(self, *exc):
        for r in self.REGS:
            gdb.execute("set $%s = %d" % (r, self.saved[r]), to_string=True)
        gdb.execute("frame 0", to_string=True)
        return False


def _first_user_frame():
    """The newest frame whose code is not in libgostack.so (where the goroutine called in)."""
    f = gdb.newest_frame()
    first = f
    while f is not None:
        sal = f.find_sal()
        name = f.name() or ""
        objfile = sal.symtab.objfile.filename if sal.symtab is not None else ""
        if "libgostack" not in objfile and not name.startswith(("gostack::", "gs_asm_", "gs_")):
            return f
        try:
            f = f.older()
        except gdb.error:
            break
    return first


def _where(g, status):
    if status == 2:
        t = _thread_of(g.tid)
        return "running on thread %d" % g.tid if t is None else "running (gdb thread %d)" % t.num
    frame = _saved_frame(g)
    if frame is None:
        return "not started" if status == 1 else ""
    try:
        with _SwappedRegisters(frame):
            f = _first_user_frame()
            return _describe_pc(f.pc())
    except gdb.error:
        return _describe_pc(frame["pc"])


class InfoGoroutines(gdb.Command):
    """info goroutines: every live goroutine (id, state or wait reason, name, thread, where)."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        rows = []
        for g in all_goroutines():
            status = g.status
            if status in (0, 4):
                continue
            reason = g.waitreason if status == 3 else ""
            state = STATUS.get(status, str(status)) + (", " + reason if reason else "")
            rows.append((g.goid, state, g.name, g.tid, _where(g, status)))
        rows.sort()
        for goid, state, name, tid, where in rows:
            print("%s goroutine %d [%s]%s%s  %s" % (
                "*" if state.startswith("running") else " ", goid, state,
                " " + repr(name) if name else "", " thread %d" % tid if tid else "", where))
        print("%d goroutines" % len(rows))


class GoroutineCmd(gdb.Command):
    """goroutine N bt: the backtrace of goroutine N (parked: from its saved context)."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if len(parts) != 2:
            raise gdb.GdbError("usage: goroutine N bt")
        goid, cmd = int(parts[0]), parts[1]
        for g in all_goroutines():
            if g.goid != goid:
                continue
            status = g.status
            if status in (0, 4):
                raise gdb.GdbError("goroutine %d has exited" % goid)
            if status == 2:
                t = _thread_of(g.tid)
                if t is None:
                    raise gdb.GdbError("goroutine %d runs on thread %d, which gdb does not see" % (goid, g.tid))
                prev = gdb.selected_thread()
                t.switch()
                try:
                    gdb.execute(cmd)
                finally:
                    prev.switch()
                return
            frame = _saved_frame(g)
            if frame is None:
                print("goroutine %d has not run yet: no frames" % goid)
                return
            with _SwappedRegisters(frame):
                gdb.execute(cmd)
            return
        raise gdb.GdbError("no goroutine %d" % goid)


InfoGoroutines()
GoroutineCmd()
