//! Directories only the current user can open: where spools, manifests and session leases live.
//!
//! - Unix: mode 0700 (an existing directory with a wider mode is narrowed to it).
//! - Windows: a protected DACL with a single entry, full control for the current user, inherited
//!   by everything created inside, so spool files and manifests are private too (an existing
//!   directory gets the same DACL again).

use std::io;
use std::path::Path;

/// Why a private directory could not be had.
#[derive(Debug)]
pub enum PrivateDirError {
    /// It could not be created.
    Create(io::Error),
    /// It exists (or was created) but could not be made private.
    Restrict(io::Error),
}

/// Creates `path` (its parent must exist) or reuses it, and makes it private to the user.
pub fn ensure(path: &Path) -> Result<(), PrivateDirError> {
    #[cfg_attr(not(unix), allow(unused_mut))] // only Unix sets a mode on it
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
        Err(e) => return Err(PrivateDirError::Create(e)),
    }
    restrict(path).map_err(PrivateDirError::Restrict)
}

#[cfg(unix)]
fn restrict(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(windows)]
fn restrict(path: &Path) -> io::Result<()> {
    windows::restrict_to_current_user(path)
}

#[cfg(not(any(unix, windows)))]
fn restrict(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether only the current user is allowed into `path`: on Unix no group or other permission
/// bits; on Windows a DACL whose every allowing entry names the current user.
#[cfg(test)]
pub fn only_current_user(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 == 0)
    }
    #[cfg(windows)]
    {
        windows::only_current_user(path)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        Ok(false)
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::{null, null_mut};

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::Authorization::{SetNamedSecurityInfoW, SE_FILE_OBJECT};
    use windows_sys::Win32::Security::{
        AddAccessAllowedAceEx, GetLengthSid, GetTokenInformation, InitializeAcl, TokenUser,
        ACCESS_ALLOWED_ACE, ACL, ACL_REVISION, CONTAINER_INHERIT_ACE, DACL_SECURITY_INFORMATION,
        OBJECT_INHERIT_ACE, PROTECTED_DACL_SECURITY_INFORMATION, PSID, TOKEN_QUERY, TOKEN_USER,
    };
    use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
    // Reading a DACL back: only the tests do.
    #[cfg(test)]
    use windows_sys::Win32::{
        Foundation::LocalFree,
        Security::Authorization::GetNamedSecurityInfoW,
        Security::{EqualSid, GetAce, ACE_HEADER, PSECURITY_DESCRIPTOR},
    };

    /// `ACCESS_ALLOWED_ACE_TYPE` (winnt.h).
    #[cfg(test)]
    const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;

    /// The current process's user, as the `TOKEN_USER` Windows fills in (8-byte aligned).
    struct CurrentUser(Vec<u64>);

    impl CurrentUser {
        fn get() -> io::Result<CurrentUser> {
            let mut token: HANDLE = null_mut();
            // SAFETY: plain Win32 calls with valid out-pointers; the token is closed below.
            unsafe {
                if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
                    return Err(io::Error::last_os_error());
                }
                let mut len = 0u32;
                GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len);
                let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
                let ok =
                    GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len);
                let err = io::Error::last_os_error();
                CloseHandle(token);
                if ok == 0 {
                    return Err(err);
                }
                Ok(CurrentUser(buf))
            }
        }

        fn sid(&self) -> PSID {
            // SAFETY: the buffer holds the TOKEN_USER GetTokenInformation wrote.
            unsafe { (*(self.0.as_ptr() as *const TOKEN_USER)).User.Sid }
        }
    }

    fn wide(path: &Path) -> Vec<u16> {
        path.as_os_str().encode_wide().chain(Some(0)).collect()
    }

    /// A DACL with one entry: full control for `sid`, inherited by files and directories
    /// created inside.
    fn owner_only_acl(sid: PSID) -> io::Result<Vec<u64>> {
        // SAFETY: the buffer is sized for one ACE holding this SID, as the Win32 docs say.
        unsafe {
            let len = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>()
                + GetLengthSid(sid) as usize;
            let mut buf = vec![0u64; len.div_ceil(8)];
            let acl = buf.as_mut_ptr() as *mut ACL;
            if InitializeAcl(acl, len as u32, ACL_REVISION) == 0
                || AddAccessAllowedAceEx(
                    acl,
                    ACL_REVISION,
                    OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
                    FILE_ALL_ACCESS,
                    sid,
                ) == 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(buf)
        }
    }

    pub fn restrict_to_current_user(path: &Path) -> io::Result<()> {
        let user = CurrentUser::get()?;
        let mut acl = owner_only_acl(user.sid())?;
        // SAFETY: the path and the ACL live until the call returns. Protected: nothing is
        // inherited from the parent, so only this entry applies.
        let rc = unsafe {
            SetNamedSecurityInfoW(
                wide(path).as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                acl.as_mut_ptr() as *mut ACL,
                null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc as i32));
        }
        Ok(())
    }

    /// Whether every allowing entry of `acl` (null: everyone allowed) names `sid`.
    ///
    /// # Safety
    /// `acl` is null or a valid ACL.
    #[cfg(test)]
    unsafe fn allows_only(acl: *const ACL, sid: PSID) -> bool {
        if acl.is_null() {
            return false;
        }
        for i in 0..u32::from((*acl).AceCount) {
            let mut ace: *mut core::ffi::c_void = null_mut();
            if GetAce(acl, i, &mut ace) == 0 {
                return false;
            }
            if (*(ace as *const ACE_HEADER)).AceType != ACCESS_ALLOWED_ACE_TYPE {
                continue; // deny entries only narrow access
            }
            let entry = ace as *const ACCESS_ALLOWED_ACE;
            if EqualSid(std::ptr::addr_of!((*entry).SidStart) as PSID, sid) == 0 {
                return false;
            }
        }
        true
    }

    #[cfg(test)]
    pub fn only_current_user(path: &Path) -> io::Result<bool> {
        let user = CurrentUser::get()?;
        let mut dacl: *mut ACL = null_mut();
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: out-pointers are valid; the descriptor is freed with LocalFree as documented.
        unsafe {
            let rc = GetNamedSecurityInfoW(
                wide(path).as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                &mut dacl,
                null_mut(),
                &mut sd,
            );
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc as i32));
            }
            let only = allows_only(dacl, user.sid());
            LocalFree(sd);
            Ok(only)
        }
    }

    /// Wine derives every file's DACL from its Unix mode and keeps none it is given, so there
    /// a DACL cannot be read back; the tests check the one built instead.
    #[cfg(test)]
    pub fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: looking up an export by name in a loaded module.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_acl_set_has_one_inherited_full_control_entry_for_the_user() {
            let user = CurrentUser::get().unwrap();
            let acl = owner_only_acl(user.sid()).unwrap();
            let acl = acl.as_ptr() as *const ACL;
            // SAFETY: a valid ACL built above.
            unsafe {
                assert_eq!((*acl).AceCount, 1);
                assert!(allows_only(acl, user.sid()));
                let mut ace: *mut core::ffi::c_void = null_mut();
                assert_ne!(GetAce(acl, 0, &mut ace), 0);
                let entry = &*(ace as *const ACCESS_ALLOWED_ACE);
                assert_eq!(entry.Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
                assert_eq!(
                    u32::from(entry.Header.AceFlags),
                    OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
                );
                assert_eq!(entry.Mask, FILE_ALL_ACCESS);
                assert!(
                    !allows_only(std::ptr::null(), user.sid()),
                    "a null DACL is open"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this platform reports the permissions it was given (see `windows::under_wine`).
    fn keeps_permissions() -> bool {
        #[cfg(windows)]
        return !windows::under_wine();
        #[cfg(not(windows))]
        true
    }

    #[test]
    fn a_private_dir_and_what_is_created_in_it_are_the_users_only() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("private");
        ensure(&dir).unwrap();
        if !keeps_permissions() {
            return;
        }
        assert!(only_current_user(&dir).unwrap(), "the directory is private");
        let file = dir.join("spool");
        std::fs::write(&file, b"x").unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap(); // Unix files get their mode where they are created, not from the directory
        assert!(
            only_current_user(&file).unwrap(),
            "a file inside is private"
        );
        // Again, on an existing directory: still fine, still private.
        ensure(&dir).unwrap();
        assert!(only_current_user(&dir).unwrap());
    }

    #[test]
    fn an_existing_open_dir_is_made_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        #[cfg(windows)]
        grant_everyone(&dir);
        if !keeps_permissions() {
            ensure(&dir).unwrap();
            return;
        }
        assert!(!only_current_user(&dir).unwrap(), "open before");
        ensure(&dir).unwrap();
        assert!(only_current_user(&dir).unwrap(), "private after");
    }

    #[test]
    fn a_missing_parent_is_a_create_error() {
        let base = tempfile::tempdir().unwrap();
        let err = ensure(&base.path().join("no").join("such")).unwrap_err();
        assert!(matches!(err, PrivateDirError::Create(_)), "{err:?}");
    }

    /// Adds an entry letting Everyone (S-1-1-0) in.
    #[cfg(windows)]
    fn grant_everyone(path: &Path) {
        use std::os::windows::ffi::OsStrExt;
        use windows_sys::Win32::Security::Authorization::{SetNamedSecurityInfoW, SE_FILE_OBJECT};
        use windows_sys::Win32::Security::{
            AddAccessAllowedAceEx, InitializeAcl, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION,
            PROTECTED_DACL_SECURITY_INFORMATION,
        };
        // S-1-1-0: revision 1, one sub-authority, authority 1 (world), sub-authority 0.
        let mut everyone: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let mut buf = [0u64; 16];
        let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
        // SAFETY: a 128-byte ACL holds one ACE for a 12-byte SID.
        unsafe {
            let acl = buf.as_mut_ptr() as *mut ACL;
            assert_ne!(InitializeAcl(acl, 128, ACL_REVISION), 0);
            assert_ne!(
                AddAccessAllowedAceEx(acl, ACL_REVISION, 0, 0x1F01FF, everyone.as_mut_ptr().cast()),
                0
            );
            let rc = SetNamedSecurityInfoW(
                wide.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                acl,
                std::ptr::null(),
            );
            assert_eq!(rc, 0);
        }
    }
}
