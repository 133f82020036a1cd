//! The user the lab runs as: ssh logs in as them, and their shell start-up files are
//! hidden inside the appliances.

use std::ffi::CStr;
use std::path::PathBuf;

use super::error::ApplianceError;

/// Name and home directory of the effective user.
#[derive(Clone, Debug)]
pub(crate) struct LoginUser {
    pub(crate) name: String,
    pub(crate) home: PathBuf,
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The effective user's passwd entry.
pub(crate) fn login_user() -> Result<LoginUser, ApplianceError> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten by getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pwd's fields.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(ApplianceError::Program {
            program: "getpwuid_r".into(),
            message: "the current user has no passwd entry".into(),
        });
    }
    // SAFETY: getpwuid_r succeeded, so both fields point to NUL-terminated strings in buf.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Ok(LoginUser {
        name,
        home: PathBuf::from(home),
    })
}
