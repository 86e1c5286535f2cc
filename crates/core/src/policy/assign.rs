//! Which policies apply to which customers: configuration, not code. Each assignment names
//! a policy and, optionally, the segments, jurisdictions and plans it is for; a customer is
//! credited under every policy whose assignment matches (each one its own ledger entry).

use super::model::Policy;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub policy: Arc<Policy>,
    /// Empty means every segment; likewise for the others.
    pub segments: Vec<String>,
    pub jurisdictions: Vec<String>,
    pub plans: Vec<String>,
}

impl Assignment {
    pub fn everyone(policy: Policy) -> Assignment {
        Assignment {
            policy: Arc::new(policy),
            segments: Vec::new(),
            jurisdictions: Vec::new(),
            plans: Vec::new(),
        }
    }

    /// A jurisdiction matches itself and every part of it: `GB` takes `GB-SCT`.
    pub fn matches(&self, segment: &str, jurisdiction: &str, plan: &str) -> bool {
        let fits = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        let within = |j: &String| {
            jurisdiction == j
                || jurisdiction.strip_prefix(j.as_str()).is_some_and(|rest| rest.starts_with('-'))
        };
        let jurisdiction_fits = self.jurisdictions.is_empty() || self.jurisdictions.iter().any(within);
        fits(&self.segments, segment) && jurisdiction_fits && fits(&self.plans, plan)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySet {
    assignments: Vec<Assignment>,
}

impl PolicySet {
    /// A set of assignments. One policy id may appear once: two assignments of the same
    /// policy would credit a customer twice under one key's worth of entitlement.
    pub fn new(assignments: Vec<Assignment>) -> Result<PolicySet, String> {
        if assignments.is_empty() {
            return Err("no policy is assigned".into());
        }
        for (i, a) in assignments.iter().enumerate() {
            if assignments[..i].iter().any(|b| b.policy.id == a.policy.id) {
                return Err(format!(
                    "policy {:?} is assigned twice; merge its conditions into one assignment",
                    a.policy.id
                ));
            }
        }
        Ok(PolicySet { assignments })
    }

    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }

    /// Whether every policy that applies to a customer with this segment, jurisdiction and
    /// plan pays outages without a claim ([`Policy::pays_outages_automatically`]).
    pub fn pays_outages_automatically(&self, segment: &str, jurisdiction: &str, plan: &str) -> bool {
        self.assignments
            .iter()
            .filter(|a| a.matches(segment, jurisdiction, plan))
            .all(|a| a.policy.pays_outages_automatically())
    }

    /// Whether a ledger entry under (`id`, `version`) could have come from this set.
    pub fn has(&self, id: &str, version: u32) -> bool {
        self.assignments.iter().any(|a| a.policy.id == id && a.policy.version == version)
    }
}

impl From<Policy> for PolicySet {
    fn from(policy: Policy) -> PolicySet {
        PolicySet { assignments: vec![Assignment::everyone(policy)] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_match_by_segment_jurisdiction_and_plan() {
        let mut a = Assignment::everyone(Policy::builtin());
        assert!(a.matches("business", "", "any"));
        a.segments = vec!["residential".into()];
        a.jurisdictions = vec!["GB-EAW".into(), "GB-SCT".into()];
        assert!(a.matches("residential", "GB-SCT", "fibre"));
        assert!(!a.matches("business", "GB-SCT", "fibre"));
        assert!(!a.matches("residential", "US-NY", "fibre"));
        a.jurisdictions = vec!["GB".into()];
        assert!(a.matches("residential", "GB-SCT", "fibre"));
        assert!(a.matches("residential", "GB", "fibre"));
        assert!(!a.matches("residential", "GBX", "fibre"));
        assert!(!a.matches("residential", "", "fibre"));
    }

    #[test]
    fn one_policy_cannot_be_assigned_twice() {
        let twice = vec![Assignment::everyone(Policy::builtin()), Assignment::everyone(Policy::builtin())];
        assert!(PolicySet::new(twice).unwrap_err().contains("assigned twice"));
    }
}
