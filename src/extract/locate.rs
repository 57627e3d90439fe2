//! Finding Tableau's `hyperd`: `hyperd_path` in the config, else `HYPERD_PATH`, else the
//! `tableauhyperapi` package of any Python on the machine (its `bin/hyper/hyperd`), else
//! next to this library (a bundle that ships it) or next to the running program.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable naming hyperd (the one Tableau's own Rust crate reads).
pub const HYPERD_ENV: &str = "HYPERD_PATH";

/// The command the error message offers.
pub const INSTALL_HINT: &str = "pip install tableauhyperapi";

fn exe_name() -> &'static str {
    if cfg!(windows) {
        "hyperd.exe"
    } else {
        "hyperd"
    }
}

/// A path given by the user: the binary itself, or a directory holding it (or `hyper/` with it).
fn given(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    [path.join(exe_name()), path.join("hyper").join(exe_name())]
        .into_iter()
        .find(|p| p.is_file())
}

/// Finds hyperd, or says where it looked and how to install it.
pub fn find(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = configured {
        return given(path).ok_or_else(|| {
            Error::config(format!(
                "\"hyperd_path\" {} is not Tableau's hyperd (no such file); give the path of the hyperd binary, e.g. …/site-packages/tableauhyperapi/bin/hyper/{}, or install it with: {INSTALL_HINT}",
                path.display(),
                exe_name()
            ))
        });
    }
    if let Some(env) = std::env::var_os(HYPERD_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&env);
        return given(&path).ok_or_else(|| {
            Error::config(format!(
                "{HYPERD_ENV} is {}, which is not Tableau's hyperd (no such file); correct it, or set \"hyperd_path\"",
                path.display()
            ))
        });
    }
    if let Some(found) = python_packages().into_iter().find_map(|p| given(&p)) {
        return Ok(found);
    }
    if let Some(found) = beside_us().into_iter().find_map(|p| given(&p)) {
        return Ok(found);
    }
    Err(Error::config(format!(
        "building a .hyper from rows needs Tableau's hyperd, and none was found (\"hyperd_path\" is not set, nor {HYPERD_ENV}, no Python has the tableauhyperapi package, and there is none beside the library); install it with: {INSTALL_HINT} (or set \"hyperd_path\" to its hyperd)"
    )))
}

/// `…/tableauhyperapi/bin` of every site-packages directory a Python of this machine uses:
/// the active virtual environment, pyenv's versions, the user's and the system's.
fn python_packages() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(venv));
    }
    if let Some(conda) = std::env::var_os("CONDA_PREFIX") {
        roots.push(PathBuf::from(conda));
    }
    let home =
        std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" }).map(PathBuf::from);
    // Every directory of PATH holding a python is a prefix's bin/ (or the prefix on Windows).
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let has_python = ["python3", "python", "python.exe", "python3.exe"]
                .iter()
                .any(|n| dir.join(n).is_file());
            if has_python {
                roots.push(if cfg!(windows) {
                    dir.clone()
                } else {
                    dir.parent().unwrap_or(&dir).to_path_buf()
                });
            }
        }
    }
    if let Some(home) = &home {
        roots.extend(children(&home.join(".pyenv").join("versions")));
        roots.push(home.join(".local"));
    }
    if cfg!(windows) {
        for var in ["LOCALAPPDATA", "APPDATA"] {
            if let Some(base) = std::env::var_os(var).map(PathBuf::from) {
                roots.extend(children(&base.join("Programs").join("Python")));
                roots.extend(children(&base.join("Python")));
            }
        }
    } else {
        roots.extend(["/usr", "/usr/local", "/opt/conda"].map(PathBuf::from));
    }
    let mut sites = Vec::new();
    for root in roots {
        if cfg!(windows) {
            sites.push(root.join("Lib").join("site-packages"));
            sites.push(root.join("site-packages"));
        }
        for lib in ["lib", "lib64"] {
            for py in children(&root.join(lib)) {
                let name = py.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with("python") {
                    sites.push(py.join("site-packages"));
                    sites.push(py.join("dist-packages"));
                }
            }
        }
        sites.push(root.join("lib").join("python3").join("dist-packages"));
    }
    sites
        .into_iter()
        .map(|s| s.join("tableauhyperapi").join("bin"))
        .collect()
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Newest versions first, so the search is stable.
    found.sort();
    found.reverse();
    found
}

/// The directories of this library and of the running program (and a bundle's `lib/` beside
/// the program's `bin/`).
fn beside_us() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(lib) = this_library() {
        if let Some(dir) = lib.parent() {
            dirs.push(dir.to_path_buf());
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            // A bundle's bin/tabpub finds the hyperd shipped beside the bundle's lib/ library.
            if dir.file_name().is_some_and(|n| n == "bin") {
                if let Some(prefix) = dir.parent() {
                    dirs.push(prefix.join("lib"));
                }
            }
        }
    }
    dirs
}

/// The file this code was loaded from (the shared library, or the program it is linked into).
#[cfg(unix)]
fn this_library() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = this_library as *const () as *const libc::c_void;
    // SAFETY: dladdr only reads the address and fills `info`.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes())))
}

#[cfg(windows)]
fn this_library() -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::LibraryLoader::{
        GetModuleFileNameW, GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    };
    let mut module = std::ptr::null_mut();
    let addr = this_library as *const () as *const u16;
    // SAFETY: asks which module holds this function's address; no reference count is taken.
    let ok = unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            addr,
            &mut module,
        )
    };
    if ok == 0 {
        return None;
    }
    let mut buf = vec![0u16; 32768];
    // SAFETY: the buffer's length is passed.
    let n = unsafe { GetModuleFileNameW(module, buf.as_mut_ptr(), buf.len() as u32) } as usize;
    (n > 0 && n < buf.len()).then(|| PathBuf::from(std::ffi::OsString::from_wide(&buf[..n])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_that_is_not_hyperd_names_the_key_and_the_install_command() {
        let e = find(Some(Path::new("/nonexistent/hyperd"))).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.message().contains("\"hyperd_path\""), "{}", e.message());
        assert!(e.message().contains(INSTALL_HINT), "{}", e.message());
    }

    #[test]
    fn a_directory_holding_hyperd_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("hyper")).unwrap();
        let exe = dir.path().join("hyper").join(exe_name());
        std::fs::write(&exe, b"").unwrap();
        assert_eq!(find(Some(dir.path())).unwrap(), exe);
    }

    #[cfg(unix)]
    #[test]
    fn this_library_is_found() {
        let path = this_library().expect("dladdr names our file");
        assert!(path.exists(), "{}", path.display());
    }
}
