//! TCP events from the kernel through eBPF, for `tw trace`.
//!
//! The programs (bpf/tw.bpf.c) are compiled into bpf/tw.bpf.o, which is
//! committed and embedded, so building tw needs only the Rust toolchain;
//! scripts/build-bpf rebuilds it and tests/trace.rs checks that the
//! committed object is what the source builds. aya loads it: pure Rust, so
//! no libbpf to link, and it applies the object's CO-RE relocations against
//! the running kernel's BTF itself.
//!
//! Every program is a BTF-typed tracepoint (tp_btf): tracefs need not be
//! mounted, and no ftrace trampoline is needed (fentry/fexit are refused
//! with EPERM on kernels that do not allow trampolines). The programs see every network namespace and drop the
//! events of all but the one asked for (its inode in the `config` map).

pub mod decode;

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use crate::model::event::Event;

/// The object the build embeds (bpf/tw.bpf.o), 8-byte aligned for the ELF
/// reader.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../bpf/tw.bpf.o"));

/// The embedded eBPF object.
pub fn object() -> &'static [u8] {
    &OBJECT.0
}

/// Program (C function name) and the tracepoint it attaches to, in the
/// order they attach: a tracepoint runs its programs in that order
/// (tracepoint_add_func() appends), and tw_state_again must run after
/// tw_state_done (bpf/tw.bpf.c says why).
const PROGRAMS: &[(&str, &str)] = &[
    ("tw_state_call", "inet_sock_set_state"),
    ("tw_state_done", "inet_sock_set_state"),
    ("tw_state_again", "inet_sock_set_state"),
    ("tw_send_reset", "tcp_send_reset"),
    ("tw_receive_reset", "tcp_receive_reset"),
    ("tw_retransmit", "tcp_retransmit_skb"),
];

/// Why events cannot be had, as one phrase for `tw: trace: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Which namespace's events to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The namespace with this inode.
    Netns(u32),
    /// Every namespace (`--all-netns`).
    All,
}

impl Scope {
    /// The namespace of the nsfs file at `path` (/proc/self/ns/net,
    /// /run/netns/NAME).
    pub fn of(path: &Path) -> Result<Scope, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Scope::Netns(meta.ino() as u32))
    }
}

/// bpf/tw.bpf.c `struct port_key`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PortKey {
    netns: u32,
    port: u16,
    pad: u16,
}

/// bpf/tw.bpf.c `struct owner`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Owner {
    pid: u32,
    dir: u8,
    pad: [u8; 3],
    comm: [u8; 16],
}

// SAFETY: plain C structs of integers, no padding the kernel reads
// uninitialised (every byte is a named field).
unsafe impl aya::Pod for PortKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Owner {}

/// Loaded and attached programs; detached when dropped.
pub struct Tracer {
    // Owns the programs and their links.
    _ebpf: Ebpf,
    ring: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    listeners: HashMap<MapData, PortKey, Owner>,
    /// Records that did not decode (a program/decoder mismatch).
    pub undecodable: u64,
}

impl Tracer {
    /// Loads the embedded object and attaches every program.
    pub fn start(scope: Scope) -> Result<Tracer, Unavailable> {
        Tracer::start_with(object(), scope)
    }

    /// Loads `object` (an eBPF ELF built from bpf/tw.bpf.c).
    pub fn start_with(object: &[u8], scope: Scope) -> Result<Tracer, Unavailable> {
        precheck()?;
        let btf = Btf::from_sys_fs()
            .map_err(|e| Unavailable(format!("reading the kernel's BTF: {e}")))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(object)
            .map_err(|e| Unavailable(explain_load(&chain(&e))))?;
        {
            let map = ebpf
                .map_mut("config")
                .ok_or_else(|| Unavailable("the eBPF object has no config map".into()))?;
            let mut config: Array<&mut MapData, u32> =
                Array::try_from(map).map_err(|e| Unavailable(format!("config map: {e}")))?;
            let inum = match scope {
                Scope::Netns(n) => n,
                Scope::All => 0,
            };
            config
                .set(0, inum, 0)
                .map_err(|e| Unavailable(format!("config map: {e}")))?;
        }
        for &(name, target) in PROGRAMS {
            attach(&mut ebpf, &btf, name, target)?;
        }
        let ring = RingBuf::try_from(
            ebpf.take_map("events")
                .ok_or_else(|| Unavailable("the eBPF object has no events map".into()))?,
        )
        .map_err(|e| Unavailable(format!("events map: {e}")))?;
        let lost = PerCpuArray::try_from(
            ebpf.take_map("lost")
                .ok_or_else(|| Unavailable("the eBPF object has no lost map".into()))?,
        )
        .map_err(|e| Unavailable(format!("lost map: {e}")))?;
        let listeners = HashMap::try_from(
            ebpf.take_map("listeners")
                .ok_or_else(|| Unavailable("the eBPF object has no listeners map".into()))?,
        )
        .map_err(|e| Unavailable(format!("listeners map: {e}")))?;
        Ok(Tracer {
            _ebpf: ebpf,
            ring,
            lost,
            listeners,
            undecodable: 0,
        })
    }

    /// Waits `timeout`, then hands every queued event to `each`. Returns how
    /// many it handed over. The programs queue without waking anyone
    /// (BPF_RB_NO_WAKEUP), so this is a sleep, not a poll: the cost is one
    /// drain per call, however many events.
    pub fn poll(&mut self, timeout: Duration, each: &mut dyn FnMut(Event)) -> usize {
        if !timeout.is_zero() {
            std::thread::sleep(timeout);
        }
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            match decode::decode(&item) {
                Ok(e) => {
                    n += 1;
                    each(e);
                }
                Err(_) => self.undecodable += 1,
            }
        }
        n
    }

    /// Credits connections accepted on `port` in namespace `netns` to a
    /// process: for listeners made before tracing began, whose listen()
    /// the programs did not see (they learn later ones themselves).
    pub fn seed_listener(&mut self, netns: u32, port: u16, pid: u32, comm: &str) {
        let mut o = Owner {
            pid,
            dir: 1,
            pad: [0; 3],
            comm: [0; 16],
        };
        let n = comm.len().min(15);
        o.comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
        let key = PortKey {
            netns,
            port,
            pad: 0,
        };
        // BPF_NOEXIST: a listen() the programs saw meanwhile is newer.
        let _ = self.listeners.insert(key, o, 1);
    }

    /// Events the programs could not queue because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// Program runs the kernel skipped because the same program was already
    /// running on that CPU (a softirq interrupting it in process context):
    /// their events are missing. bpf_trace_run*() in kernel/trace/bpf_trace.c
    /// counts them in bpf_prog_info.recursion_misses (Linux 5.12+; 0 before).
    pub fn skipped(&self) -> u64 {
        PROGRAMS
            .iter()
            .filter_map(|(name, _)| self._ebpf.program(name)?.fd().ok())
            .filter_map(|fd| recursion_misses(fd.as_fd()))
            .sum()
    }
}

/// `bpf_prog_info.recursion_misses` of the program `fd` (include/uapi/linux/bpf.h).
fn recursion_misses(fd: std::os::fd::BorrowedFd<'_>) -> Option<u64> {
    use std::os::fd::AsRawFd;
    /// Offset of recursion_misses in struct bpf_prog_info: after run_time_ns
    /// (192) and run_cnt (200).
    const RECURSION_MISSES: usize = 208;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    #[repr(C, align(8))]
    struct Info([u8; 256]);
    #[repr(C)]
    struct Attr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut info = Info([0; 256]);
    let mut attr = Attr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: info.0.len() as u32,
        info: info.0.as_mut_ptr() as u64,
    };
    // SAFETY: bpf(2) with a valid attr for BPF_OBJ_GET_INFO_BY_FD; the
    // kernel writes at most info_len bytes into `info`, which outlives the
    // call, and reports how many it wrote in attr.info_len.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut Attr,
            std::mem::size_of::<Attr>() as u32,
        )
    };
    if rc != 0 || (attr.info_len as usize) < RECURSION_MISSES + 8 {
        return None;
    }
    let bytes = info.0[RECURSION_MISSES..RECURSION_MISSES + 8]
        .try_into()
        .ok()?;
    Some(u64::from_ne_bytes(bytes))
}

fn attach(ebpf: &mut Ebpf, btf: &Btf, name: &str, target: &str) -> Result<(), Unavailable> {
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| Unavailable(format!("the eBPF object has no program {name}")))?;
    let fail = |what: &str, e: &dyn std::error::Error| {
        Unavailable(explain_attach(what, target, &chain(e)))
    };
    let p: &mut BtfTracePoint = program.try_into().map_err(|e| fail("loading", &e))?;
    p.load(target, btf).map_err(|e| fail("loading", &e))?;
    p.attach().map_err(|e| fail("attaching", &e))?;
    Ok(())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

fn explain_load(chain: &str) -> String {
    if chain.contains("Operation not permitted") || chain.contains("EPERM") {
        return format!(
            "the kernel refused to load eBPF ({chain}); it needs root or CAP_BPF with \
             CAP_PERFMON, and no kernel lockdown"
        );
    }
    format!("loading the eBPF object: {chain}")
}

fn explain_attach(what: &str, target: &str, chain: &str) -> String {
    if chain.contains("not found") || chain.contains("No such file") {
        return format!(
            "this kernel has no {target} to attach to ({chain}); tw trace needs Linux 5.10 or \
             later with BTF"
        );
    }
    if chain.contains("Operation not permitted") {
        return format!(
            "{what} the program for {target} was refused ({chain}); it needs root or CAP_BPF \
             with CAP_PERFMON, and no kernel lockdown"
        );
    }
    format!("{what} the program for {target}: {chain}")
}

/// What can be told before trying: no BTF, no privilege, lockdown.
fn precheck() -> Result<(), Unavailable> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Unavailable(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing; it needs \
             CONFIG_DEBUG_INFO_BTF, Linux 5.5 or later)"
                .into(),
        ));
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(caps) = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        {
            if !privileged(caps) {
                return Err(Unavailable(
                    "loading eBPF programs needs root (or CAP_BPF and CAP_PERFMON)".into(),
                ));
            }
        }
    }
    if let Ok(lockdown) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        if lockdown.contains("[confidentiality]") {
            return Err(Unavailable(
                "kernel lockdown (confidentiality) forbids eBPF programs that read kernel memory"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// CAP_SYS_ADMIN (21), or CAP_BPF (39) with CAP_PERFMON (38) for tracing
/// programs (kernel/bpf/syscall.c bpf_prog_load, bpf_capable/perfmon_capable).
fn privileged(caps: u64) -> bool {
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    has(21) || (has(39) && has(38))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_is_sys_admin_or_bpf_with_perfmon() {
        assert!(privileged(1 << 21));
        assert!(privileged((1 << 39) | (1 << 38)));
        assert!(!privileged(1 << 39));
        assert!(!privileged(1 << 38));
        assert!(!privileged(0));
    }

    #[test]
    fn the_embedded_object_is_an_ebpf_elf_with_every_program() {
        let o = object();
        assert_eq!(&o[..4], b"\x7fELF");
        // e_machine EM_BPF (247), little-endian ELF64.
        assert_eq!(u16::from_le_bytes([o[18], o[19]]), 247);
        for (name, target) in PROGRAMS {
            let has = |s: &str| o.windows(s.len()).any(|w| w == s.as_bytes());
            assert!(has(name), "{name}");
            assert!(has(target), "{target}");
        }
    }

    #[test]
    fn tw_state_again_attaches_after_tw_state_done_to_redo_its_skipped_runs() {
        let at = |name: &str| PROGRAMS.iter().position(|(n, _)| *n == name).unwrap();
        assert!(at("tw_state_done") < at("tw_state_again"));
        for name in ["tw_state_call", "tw_state_done", "tw_state_again"] {
            assert_eq!(PROGRAMS[at(name)].1, "inet_sock_set_state");
        }
    }

    #[test]
    fn a_missing_attach_point_names_the_kernel_function() {
        let m = explain_attach("loading", "tcp_send_reset", "type not found");
        assert!(
            m.contains("tcp_send_reset") && m.contains("Linux 5.10"),
            "{m}"
        );
    }
}
