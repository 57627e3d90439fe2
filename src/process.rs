//! Whether another process still runs: for telling a running publish or session holder from
//! one whose process died.

/// Whether process `pid` exists (on this machine).
#[cfg(unix)]
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether process `pid` exists: without a way to ask, only this one is known to.
#[cfg(not(unix))]
pub(crate) fn alive(pid: u32) -> bool {
    pid == std::process::id()
}
