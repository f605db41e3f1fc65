//! The kernel's numbers that tw's readers, examples and fuzz targets share,
//! each declared once, with the header it comes from.

/// TCP_TIMEWAIT_LEN (include/net/tcp.h): how long TIME_WAIT lasts, in
/// seconds. Fixed at build time of the kernel, not a sysctl.
pub const TIME_WAIT_SECS: u64 = 60;

/// USER_HZ: the unit of /proc/net/tcp's `tm->when` (jiffies_to_clock_t).
pub const USER_HZ: u64 = 100;

// include/uapi/linux/netlink.h
/// sizeof(struct nlmsghdr).
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x01;
/// Set on a dump's messages when the table changed while it was walked.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// NLM_F_ROOT | NLM_F_MATCH.
pub const NLM_F_DUMP: u16 = 0x300;

// include/uapi/linux/sock_diag.h, include/uapi/linux/inet_diag.h
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The legacy request and reply type. Its `struct inet_diag_req` may name no
/// family, and the kernel then walks the connection hash once for both
/// (inet_diag_dump_compat passes AF_UNSPEC on), where SOCK_DIAG_BY_FAMILY
/// walks it once per family. The replies carry the same `struct inet_diag_msg`.
pub const TCPDIAG_GETSOCK: u16 = 18;
/// sizeof(struct inet_diag_msg).
pub const INET_DIAG_MSG_LEN: usize = 72;
/// sizeof(struct inet_diag_sockid).
pub const INET_DIAG_SOCKID_LEN: usize = 48;
/// The request attribute carrying a filter program.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// INET_DIAG_BC_* (include/uapi/linux/inet_diag.h): the filter program's ops.
pub mod bc {
    pub const NOP: u8 = 0;
    pub const JMP: u8 = 1;
    pub const S_GE: u8 = 2;
    pub const S_LE: u8 = 3;
    pub const D_GE: u8 = 4;
    pub const D_LE: u8 = 5;
    pub const AUTO: u8 = 6;
    pub const S_COND: u8 = 7;
    pub const D_COND: u8 = 8;
    pub const DEV_COND: u8 = 9;
    pub const MARK_COND: u8 = 10;
}

// include/uapi/linux/inet_diag.h: reply attributes, and their bits in a
// request's idiag_ext (bit attr-1; net/ipv4/inet_diag.c, inet_sk_diag_fill).
pub const INET_DIAG_INFO: u16 = 2;
pub const INET_DIAG_CONG: u16 = 4;
pub const INET_DIAG_SKMEMINFO: u16 = 7;
/// idiag_ext bit asking for `struct tcp_info`.
pub const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);
/// idiag_ext bit asking for the congestion control's name.
pub const EXT_CONG: u8 = 1 << (INET_DIAG_CONG - 1);
/// idiag_ext bit asking for the sk_meminfo u32 array.
pub const EXT_SKMEMINFO: u8 = 1 << (INET_DIAG_SKMEMINFO - 1);
/// sizeof(struct tcp_info) as of Linux 6.7 (tcpi_total_rto_time last);
/// older kernels send less and newer may send more (only this much is kept).
pub const TCP_INFO_LEN: usize = 248;
/// SK_MEMINFO_VARS (include/uapi/linux/sock_diag.h): r, rb, t, tb, f, w, o,
/// bl, d.
pub const SK_MEMINFO_VARS: usize = 9;
/// TCP_CA_NAME_MAX (include/net/tcp.h): the longest congestion control name.
pub const TCP_CA_NAME_MAX: usize = 16;
