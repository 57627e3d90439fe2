//! A Tableau REST API version such as `3.25`: parsed once (from the config's `api_version`
//! or Server Info's `restApiVersion`), compared as numbers (3.10 is newer than 3.9), and shown
//! as it goes in a URL.

use std::fmt;
use std::str::FromStr;

/// A REST API version, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ApiVersion {
    major: u32,
    minor: u32,
}

impl ApiVersion {
    /// `major.minor`.
    pub(crate) const fn new(major: u32, minor: u32) -> ApiVersion {
        ApiVersion { major, minor }
    }
}

/// The text is not `major.minor` in decimal numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAVersion;

impl FromStr for ApiVersion {
    type Err = NotAVersion;

    /// Parses `"3.21"`.
    fn from_str(s: &str) -> Result<ApiVersion, NotAVersion> {
        let (major, minor) = s.split_once('.').ok_or(NotAVersion)?;
        Ok(ApiVersion {
            major: major.parse().map_err(|_| NotAVersion)?,
            minor: minor.parse().map_err(|_| NotAVersion)?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compares_and_displays() {
        let v: ApiVersion = "3.25".parse().unwrap();
        assert_eq!(v, ApiVersion::new(3, 25));
        assert_eq!(v.to_string(), "3.25");
        assert!("3.10".parse::<ApiVersion>().unwrap() > "3.9".parse().unwrap());
        assert!(ApiVersion::new(2, 4) < ApiVersion::new(3, 0));
        for bad in ["", "3", "3.", ".3", "3.x", "three", "3.2.1", "-3.1"] {
            assert_eq!(bad.parse::<ApiVersion>(), Err(NotAVersion), "{bad}");
        }
    }
}
