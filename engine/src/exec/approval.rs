//! Who decides about manual steps.

/// Decides whether a manual step is approved, and by whom.
#[async_trait::async_trait]
pub trait ApprovalPolicy: Send + Sync {
    /// `Some(approver)` to approve `instance`, `None` to leave it awaiting approval.
    async fn decide(&self, instance: &str, instructions: &str) -> Option<String>;
}

/// Approves nothing: every manual step waits (the run pauses).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoApprovals;

#[async_trait::async_trait]
impl ApprovalPolicy for NoApprovals {
    async fn decide(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// Approves the listed instances (or all, with `all`) in the name of `approver`.
#[derive(Debug, Default, Clone)]
pub struct PreApproved {
    /// Who approves.
    pub approver: String,
    /// Instance ids approved in advance (`--approve ID`).
    pub instances: Vec<String>,
    /// Approve everything (`--yes`).
    pub all: bool,
}

#[async_trait::async_trait]
impl ApprovalPolicy for PreApproved {
    async fn decide(&self, instance: &str, _: &str) -> Option<String> {
        (self.all || self.instances.iter().any(|i| i == instance)).then(|| self.approver.clone())
    }
}
