//! Failures: a one-line message and the exit code that classifies it (the table is in the
//! crate docs of `main.rs` and in `--help`).

use lokimq::RequestError;

/// The non-zero exit codes the tool itself chooses (clap exits with 2 on usage errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything not classified below.
    Other,
    /// Connected, but no reply in time.
    Timeout,
    /// FORBIDDEN, FORBIDDEN_SN or NOT_A_SERVICE_NODE.
    Forbidden,
    /// UNKNOWNCOMMAND.
    UnknownCommand,
    /// No connection within the timeout.
    Connect,
    /// A key file or an address that cannot be used.
    BadInput,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Other => 1,
            Self::Timeout => 3,
            Self::Forbidden => 4,
            Self::UnknownCommand => 5,
            Self::Connect => 6,
            Self::BadInput => 7,
        }
    }

    /// The class of a request's error reply.
    pub(crate) fn of_request_error(e: &RequestError) -> Self {
        match e {
            RequestError::Timeout => Self::Timeout,
            RequestError::Forbidden | RequestError::ForbiddenSn | RequestError::NotAServiceNode => {
                Self::Forbidden
            }
            RequestError::UnknownCommand => Self::UnknownCommand,
            // The connection was lost for good before the reply came.
            RequestError::Disconnected => Self::Connect,
            // NO_REPLY_TAG means the remote saw a request without a tag: not the caller's doing.
            _ => Self::Other,
        }
    }
}

/// Why a subcommand failed, as printed (`error: MESSAGE`) and as exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code's class.
    pub(crate) exit: Exit,
    /// One line, without the `error: ` prefix.
    pub(crate) message: String,
}

impl Failure {
    /// A failure of class `exit`.
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    /// An unclassified failure (exit 1).
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new(Exit::Other, message)
    }

    /// A bad key file or address (exit 7).
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::new(Exit::BadInput, message)
    }
}

/// `2s`, `0.5s`, `1.25s`: a duration as a user would have typed it for `--timeout`.
pub(crate) fn secs(d: std::time::Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_print_as_typed() {
        assert_eq!(secs(Duration::from_secs(2)), "2s");
        assert_eq!(secs(Duration::from_millis(500)), "0.5s");
        assert_eq!(secs(Duration::from_millis(1250)), "1.25s");
        assert_eq!(secs(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn request_errors_map_to_distinct_codes() {
        let codes: Vec<u8> = [
            RequestError::Timeout,
            RequestError::Forbidden,
            RequestError::UnknownCommand,
        ]
        .iter()
        .map(|e| Exit::of_request_error(e).code())
        .collect();
        assert_eq!(codes, [3, 4, 5]);
        assert_eq!(Exit::of_request_error(&RequestError::ForbiddenSn).code(), 4);
        assert_eq!(
            Exit::of_request_error(&RequestError::NotAServiceNode).code(),
            4
        );
    }
}
