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

/// Whether process `pid` exists and has not exited (on this machine). A process that cannot be
/// opened for lack of rights (another user's) counts as running.
#[cfg(windows)]
pub(crate) fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_ACCESS_DENIED, STILL_ACTIVE,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    if pid == std::process::id() {
        return true;
    }
    // SAFETY: plain Win32 calls; the handle is closed before returning.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return GetLastError() == ERROR_ACCESS_DENIED;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        // A process that exited with status 259 looks running: Windows' own ambiguity.
        ok != 0 && code == STILL_ACTIVE as u32
    }
}

/// Whether process `pid` exists: without a way to ask, only this one is known to.
#[cfg(not(any(unix, windows)))]
pub(crate) fn alive(pid: u32) -> bool {
    pid == std::process::id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// Run as a child by the test below: waits until its standard input closes.
    #[test]
    #[ignore = "a helper process for another test"]
    fn helper_waits_for_stdin_to_close() {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    }

    #[test]
    fn a_running_process_is_alive_and_an_ended_one_is_not() {
        assert!(alive(std::process::id()));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "process::tests::helper_waits_for_stdin_to_close",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(alive(pid), "the child runs until its stdin closes");
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        assert!(!alive(pid), "the child has ended");
    }
}
