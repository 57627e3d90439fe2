//! `ApiError`: a Tableau error response (status, code, summary, detail) and its common kinds.

/// A Tableau error response.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub summary: String,
    pub detail: String,
    pub retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(
        status: u16,
        code: &str,
        summary: &str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            summary: summary.to_owned(),
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "400000", "Bad Request", detail)
    }
    pub(crate) fn malformed() -> ApiError {
        ApiError::bad_request("Payload is either malformed XML or incomplete")
    }
    pub(crate) fn bad_filter(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "400006", "Bad Request", detail)
    }
    pub(crate) fn publish_problem(file: &str) -> ApiError {
        ApiError::new(
            400,
            "400011",
            "Bad Request",
            format!("There was a problem publishing the file '{file}'."),
        )
    }
    pub(crate) fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(413, "413000", "Payload Too Large", detail)
    }
    pub(crate) fn unknown_resource(rest: &str) -> ApiError {
        ApiError::new(
            404,
            "404003",
            "Resource Not Found",
            format!("Unknown resource '{rest}' specified in URI."),
        )
    }
    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            405,
            "405000",
            "Method Not Allowed",
            format!("The HTTP method '{method}' is not supported for the given resource"),
        )
    }
    pub(crate) fn no_credentials() -> ApiError {
        ApiError::new(
            401,
            "401000",
            "Unauthorized Access",
            "No authentication credentials were provided.",
        )
    }
    pub(crate) fn invalid_credentials() -> ApiError {
        ApiError::new(
            401,
            "401002",
            "Unauthorized Access",
            "Invalid authentication credentials were provided.",
        )
    }
    pub(crate) fn signin_error() -> ApiError {
        ApiError::new(
            401,
            "401001",
            "Signin Error",
            "Error signing in to Tableau Server",
        )
    }
    /// A connected-app sign-in failure: 401001 with Tableau's error number in the detail.
    pub(crate) fn jwt_signin_error(n: u32) -> ApiError {
        ApiError::new(
            401,
            "401001",
            "Signin Error",
            format!("Error signing in to Tableau Server (errorCode={n})"),
        )
    }
    /// A JWT session calling an endpoint its scopes do not cover (a choice; see the README).
    pub(crate) fn missing_scope(scope: &str) -> ApiError {
        ApiError::new(
            403,
            "403157",
            "Forbidden",
            format!("The JWT does not grant scope '{scope}' needed for this call."),
        )
    }
}
