//! The dependency closure of a package request, chosen as apt chooses for a fresh install.
//!
//! - `Pre-Depends` and `Depends` (and `Recommends` when asked, which are dropped with a note
//!   when they cannot be satisfied, as apt does) are followed to the bottom.
//! - The candidate of a package is its highest version in the universe (every suite of every
//!   source, each at apt's default priority). When the highest version does not satisfy a
//!   versioned relation, the highest one that does is taken (apt's classic solver would fail
//!   there; picking the older version is what a user then asks apt for by hand).
//! - `a | b`: an alternative already chosen or installed satisfies the relation; otherwise the
//!   first alternative that can be installed with all its dependencies, in order.
//! - Virtual packages: a relation on a name no package has is satisfied through `Provides`
//!   (a versioned relation only by a versioned `Provides`); among several providers, one
//!   already chosen or installed wins, then the one with the most important `Priority`, then
//!   the first by name. A request that names a virtual package with several providers is an
//!   error, as with `apt-get install`.
//! - Packages of the installed set (a dpkg status file) satisfy relations they meet, and are
//!   not carried.
//!
//! Conflicts and Breaks are not checked: the result feeds a mirror, and apt on the host makes
//! the final plan.

use std::collections::HashMap;
use std::fmt;

use debversion::Version;

use super::control::{
    ControlError, Dependency, Provided, Relation, parse_provides, parse_relations, parse_version,
};

/// One package version that may be chosen.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Package name.
    pub name: String,
    /// Its version.
    pub version: Version,
    /// `all` or the architecture it was built for.
    pub architecture: String,
    /// `Priority`, when given.
    pub priority: Option<String>,
    /// `Provides`, parsed.
    pub provides: Vec<Provided>,
    /// `Pre-Depends`, as written.
    pub pre_depends: Option<String>,
    /// `Depends`, as written.
    pub depends: Option<String>,
    /// `Recommends`, as written.
    pub recommends: Option<String>,
    /// The caller's tag for where it comes from (which index file, which stanza).
    pub origin: (usize, usize),
}

impl Candidate {
    /// A candidate from a stanza's fields; `origin` is the caller's tag.
    pub fn from_fields<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        origin: (usize, usize),
    ) -> Result<Candidate, ControlError> {
        let field = |name: &str| -> Result<&'a str, ControlError> {
            get(name).ok_or_else(|| ControlError::BadRelation {
                text: String::new(),
                reason: format!("the stanza has no {name} field"),
            })
        };
        Ok(Candidate {
            name: field("Package")?.to_string(),
            version: parse_version(field("Version")?)?,
            architecture: field("Architecture")?.to_string(),
            priority: get("Priority").map(str::to_string),
            provides: get("Provides")
                .map(parse_provides)
                .transpose()?
                .unwrap_or_default(),
            pre_depends: get("Pre-Depends").map(str::to_string),
            depends: get("Depends").map(str::to_string),
            recommends: get("Recommends").map(str::to_string),
            origin,
        })
    }

    fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.architecture)
    }
}

/// Every package version that may be chosen, indexed by name and by what it provides.
#[derive(Debug, Default)]
pub struct Universe {
    candidates: Vec<Candidate>,
    /// Name to candidates, highest version first.
    by_name: HashMap<String, Vec<usize>>,
    /// Provided name to the candidates that provide it.
    providers: HashMap<String, Vec<usize>>,
}

impl Universe {
    /// Adds a candidate; a second copy of the same name, version and architecture (the same
    /// package in two suites) is ignored, so the first source listed wins.
    pub fn add(&mut self, candidate: Candidate) {
        let list = self.by_name.entry(candidate.name.clone()).or_default();
        if list.iter().any(|&i| {
            let c = &self.candidates[i];
            c.version == candidate.version && c.architecture == candidate.architecture
        }) {
            return;
        }
        let index = self.candidates.len();
        // Highest version first; among equal versions, the first added.
        let at = list
            .iter()
            .position(|&i| self.candidates[i].version < candidate.version)
            .unwrap_or(list.len());
        list.insert(at, index);
        for p in &candidate.provides {
            self.providers
                .entry(p.name.clone())
                .or_default()
                .push(index);
        }
        self.candidates.push(candidate);
    }

    /// The candidate at `index`.
    pub fn get(&self, index: usize) -> &Candidate {
        &self.candidates[index]
    }

    /// How many candidates there are.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The versions of `name`, highest first.
    fn versions(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Packages already on the hosts (from a dpkg status file).
#[derive(Debug, Default, Clone)]
pub struct Installed {
    packages: HashMap<String, Vec<Version>>,
    provides: HashMap<String, Vec<(String, Option<Version>)>>,
}

impl Installed {
    /// Reads a dpkg status file: only packages whose `Status` ends in `installed` count.
    pub fn parse(text: &str) -> Result<Installed, ControlError> {
        let mut installed = Installed::default();
        for stanza in super::control::stanzas(text)? {
            let status = stanza.get("Status").unwrap_or("");
            if status.split_whitespace().last() != Some("installed") {
                continue;
            }
            let (Some(name), Some(version)) = (stanza.get("Package"), stanza.get("Version")) else {
                continue;
            };
            let provides = stanza
                .get("Provides")
                .map(parse_provides)
                .transpose()?
                .unwrap_or_default();
            installed.add(name, parse_version(version)?, provides);
        }
        Ok(installed)
    }

    /// Records an installed package.
    pub fn add(&mut self, name: &str, version: Version, provides: Vec<Provided>) {
        for p in provides {
            self.provides
                .entry(p.name)
                .or_default()
                .push((name.to_string(), p.version));
        }
        self.packages
            .entry(name.to_string())
            .or_default()
            .push(version);
    }

    /// How many packages are installed.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The installed package that satisfies `d`, as `name version`.
    fn satisfies(&self, d: &Dependency) -> Option<String> {
        if let Some(versions) = self.packages.get(&d.name)
            && let Some(v) = versions
                .iter()
                .find(|v| d.constraint.as_ref().is_none_or(|c| c.admits(v)))
        {
            return Some(format!("{} {v}", d.name));
        }
        self.provides.get(&d.name).and_then(|list| {
            list.iter()
                .find(|(_, pv)| provided_admits(d, pv.as_ref()))
                .map(|(by, _)| format!("{by} (provides {})", d.name))
        })
    }
}

/// Whether a `Provides` entry with version `provided` satisfies `d`.
fn provided_admits(d: &Dependency, provided: Option<&Version>) -> bool {
    match (&d.constraint, provided) {
        (None, _) => true,
        (Some(c), Some(v)) => c.admits(v),
        (Some(_), None) => false,
    }
}

/// Resolution options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The architecture resolved for (`all` packages always qualify).
    pub architecture: String,
    /// Follow `Recommends` too.
    pub recommends: bool,
}

/// What a request resolved to.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Chosen candidates (universe indices), in the order they were chosen.
    pub chosen: Vec<usize>,
    /// Things worth telling: recommends left out, requests already installed.
    pub notes: Vec<String>,
}

/// A request that cannot be satisfied, with the chain of relations that led there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ResolveError {
    /// The request as written.
    pub request: String,
    /// From the request down to the relation that failed, one step a line.
    pub chain: Vec<String>,
    /// Why the last step failed.
    pub reason: String,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve {:?}: {}", self.request, self.reason)?;
        if !self.chain.is_empty() {
            write!(f, "\n  the chain that failed:")?;
            write!(f, "\n    requested: {}", self.request)?;
            for step in &self.chain {
                write!(f, "\n    -> {step}")?;
            }
        }
        Ok(())
    }
}

/// A failure on the way up, before the request is known.
#[derive(Debug, Clone)]
struct Failure {
    chain: Vec<String>,
    reason: String,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Package name to the chosen candidate.
    chosen: HashMap<String, usize>,
    order: Vec<usize>,
    /// Provided name to the chosen candidates providing it.
    provided: HashMap<String, Vec<usize>>,
    notes: Vec<String>,
}

/// Resolves `requests` (relations as in a `Depends` field) over `universe`.
pub fn resolve(
    universe: &Universe,
    installed: &Installed,
    requests: &[(String, Relation)],
    options: &Options,
) -> Result<Resolution, ResolveError> {
    let mut resolver = Resolver {
        universe,
        installed,
        options,
        state: State::default(),
    };
    for (text, relation) in requests {
        let fail = |f: Failure| ResolveError {
            request: text.clone(),
            chain: f.chain,
            reason: f.reason,
        };
        if let Some(by) = resolver.satisfied(relation) {
            if let Some(installed) = by.strip_prefix(INSTALLED) {
                resolver.state.notes.push(format!(
                    "{text}: already installed ({installed}, from the status file), not carried"
                ));
            }
            continue;
        }
        resolver.ambiguous_virtual(relation).map_err(fail)?;
        resolver.satisfy(relation).map_err(fail)?;
    }
    Ok(Resolution {
        chosen: resolver.state.order,
        notes: resolver.state.notes,
    })
}

/// Marks a relation satisfied by the installed set rather than by a chosen package.
const INSTALLED: &str = "installed:";

struct Resolver<'a> {
    universe: &'a Universe,
    installed: &'a Installed,
    options: &'a Options,
    state: State,
}

impl Resolver<'_> {
    fn qualifies(&self, c: &Candidate) -> bool {
        c.architecture == "all" || c.architecture == self.options.architecture
    }

    /// What already satisfies the relation: a chosen package, or (prefixed) an installed one.
    fn satisfied(&self, relation: &Relation) -> Option<String> {
        let alternatives: Vec<&Dependency> = self.applicable(relation);
        for d in &alternatives {
            if let Some(&i) = self.state.chosen.get(&d.name) {
                let c = self.universe.get(i);
                if d.constraint.as_ref().is_none_or(|k| k.admits(&c.version)) {
                    return Some(c.label());
                }
            }
            if let Some(list) = self.state.provided.get(&d.name) {
                for &i in list {
                    let c = self.universe.get(i);
                    if c.provides
                        .iter()
                        .any(|p| p.name == d.name && provided_admits(d, p.version.as_ref()))
                    {
                        return Some(c.label());
                    }
                }
            }
        }
        for d in &alternatives {
            if let Some(by) = self.installed.satisfies(d) {
                return Some(format!("{INSTALLED}{by}"));
            }
        }
        None
    }

    fn applicable<'r>(&self, relation: &'r Relation) -> Vec<&'r Dependency> {
        relation
            .alternatives
            .iter()
            .filter(|d| d.applies_to(&self.options.architecture))
            .collect()
    }

    /// A request naming only a virtual package with several providers is the user's choice.
    fn ambiguous_virtual(&self, relation: &Relation) -> Result<(), Failure> {
        let [d] = self.applicable(relation)[..] else {
            return Ok(());
        };
        if self
            .universe
            .versions(&d.name)
            .iter()
            .any(|&i| self.qualifies(self.universe.get(i)))
        {
            return Ok(());
        }
        let mut names: Vec<&str> = self
            .providers(d)
            .into_iter()
            .map(|i| self.universe.get(i).name.as_str())
            .collect();
        names.dedup();
        if names.len() > 1 {
            return Err(Failure {
                chain: Vec::new(),
                reason: format!(
                    "{} is a virtual package provided by {}; name the one to carry in the manifest",
                    d.name,
                    names.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// Candidates that provide `d` (the best version of each providing package), best first.
    fn providers(&self, d: &Dependency) -> Vec<usize> {
        let Some(list) = self.universe.providers.get(&d.name) else {
            return Vec::new();
        };
        let mut found: Vec<usize> = Vec::new();
        for &i in list {
            let c = self.universe.get(i);
            if !self.qualifies(c)
                || !c
                    .provides
                    .iter()
                    .any(|p| p.name == d.name && provided_admits(d, p.version.as_ref()))
            {
                continue;
            }
            // Keep the highest qualifying version of each providing package.
            match found
                .iter_mut()
                .find(|j| self.universe.get(**j).name == c.name)
            {
                Some(j) if self.universe.get(*j).version < c.version => *j = i,
                Some(_) => {}
                None => found.push(i),
            }
        }
        found.sort_by(|&a, &b| {
            let (a, b) = (self.universe.get(a), self.universe.get(b));
            priority_rank(a.priority.as_deref())
                .cmp(&priority_rank(b.priority.as_deref()))
                .then_with(|| a.name.cmp(&b.name))
        });
        found
    }

    /// What can satisfy `d`, best first: the best real version, then providers.
    fn candidates(&self, d: &Dependency) -> Result<Vec<usize>, String> {
        let versions: Vec<usize> = self
            .universe
            .versions(&d.name)
            .iter()
            .copied()
            .filter(|&i| self.qualifies(self.universe.get(i)))
            .collect();
        let mut out = Vec::new();
        if let Some(&i) = versions.iter().find(|&&i| {
            d.constraint
                .as_ref()
                .is_none_or(|c| c.admits(&self.universe.get(i).version))
        }) {
            out.push(i);
        }
        out.extend(self.providers(d));
        if out.is_empty() {
            let arch = &self.options.architecture;
            return Err(if versions.is_empty() {
                if self.universe.versions(&d.name).is_empty() {
                    format!(
                        "no package {} (for {arch} or all) in any listed suite, and no package provides it",
                        d.name
                    )
                } else {
                    format!(
                        "{} exists only for other architectures than {arch} and all",
                        d.name
                    )
                }
            } else {
                let available: Vec<String> = versions
                    .iter()
                    .map(|&i| self.universe.get(i).version.to_string())
                    .collect();
                format!(
                    "{d} cannot be satisfied: the versions available are {}",
                    available.join(", ")
                )
            });
        }
        Ok(out)
    }

    fn satisfy(&mut self, relation: &Relation) -> Result<(), Failure> {
        let alternatives = self.applicable(relation);
        if alternatives.is_empty() || self.satisfied(relation).is_some() {
            return Ok(());
        }
        let mut failures: Vec<(String, Failure)> = Vec::new();
        for d in alternatives {
            let candidates = match self.candidates(d) {
                Ok(c) => c,
                Err(reason) => {
                    failures.push((
                        d.to_string(),
                        Failure {
                            chain: Vec::new(),
                            reason,
                        },
                    ));
                    continue;
                }
            };
            for i in candidates {
                let snapshot = self.state.clone();
                match self.install(i) {
                    Ok(()) => return Ok(()),
                    Err(f) => {
                        self.state = snapshot;
                        failures.push((d.to_string(), f));
                    }
                }
            }
        }
        let mut first = failures.remove(0).1;
        if !failures.is_empty() {
            let others: Vec<String> = failures
                .iter()
                .map(|(d, f)| format!("{d}: {}", f.reason))
                .collect();
            first.reason = format!(
                "{} (other alternatives fail too: {})",
                first.reason,
                others.join("; ")
            );
        }
        Err(first)
    }

    fn install(&mut self, index: usize) -> Result<(), Failure> {
        let c = self.universe.get(index);
        if let Some(&existing) = self.state.chosen.get(&c.name) {
            if existing == index {
                return Ok(());
            }
            return Err(Failure {
                chain: Vec::new(),
                reason: format!(
                    "{} is needed, but {} was already chosen",
                    c.label(),
                    self.universe.get(existing).label()
                ),
            });
        }
        self.state.chosen.insert(c.name.clone(), index);
        self.state.order.push(index);
        for p in &c.provides {
            self.state
                .provided
                .entry(p.name.clone())
                .or_default()
                .push(index);
        }
        let parse = |field: &Option<String>, kind: &str| -> Result<Vec<Relation>, Failure> {
            field
                .as_deref()
                .map(parse_relations)
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(|e| Failure {
                    chain: Vec::new(),
                    reason: format!("cannot read {kind} of {}: {e}", c.label()),
                })
        };
        let mut hard: Vec<(&str, Relation)> = Vec::new();
        for r in parse(&c.pre_depends, "Pre-Depends")? {
            hard.push(("Pre-Depends", r));
        }
        for r in parse(&c.depends, "Depends")? {
            hard.push(("Depends", r));
        }
        for (kind, relation) in hard {
            self.satisfy(&relation).map_err(|mut f| {
                f.chain
                    .insert(0, format!("{} {kind}: {relation}", c.label()));
                f
            })?;
        }
        if self.options.recommends {
            for relation in parse(&c.recommends, "Recommends")? {
                let snapshot = self.state.clone();
                if let Err(f) = self.satisfy(&relation) {
                    self.state = snapshot;
                    self.state.notes.push(format!(
                        "{} Recommends: {relation}: left out ({})",
                        c.label(),
                        f.reason
                    ));
                }
            }
        }
        Ok(())
    }
}

/// apt's order of priorities: required first.
fn priority_rank(priority: Option<&str>) -> u8 {
    match priority {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::{parse_relation, stanzas};
    use super::*;

    fn universe(text: &str) -> Universe {
        let mut u = Universe::default();
        for (i, s) in stanzas(text).unwrap().iter().enumerate() {
            u.add(Candidate::from_fields(|n| s.get(n), (0, i)).unwrap());
        }
        u
    }

    fn names(u: &Universe, r: &Resolution) -> Vec<String> {
        let mut v: Vec<String> = r
            .chosen
            .iter()
            .map(|&i| format!("{}={}", u.get(i).name, u.get(i).version))
            .collect();
        v.sort();
        v
    }

    fn run(
        u: &Universe,
        installed: &Installed,
        requests: &[&str],
    ) -> Result<Vec<String>, ResolveError> {
        run_with(u, installed, requests, false).map(|r| names(u, &r))
    }

    fn run_with(
        u: &Universe,
        installed: &Installed,
        requests: &[&str],
        recommends: bool,
    ) -> Result<Resolution, ResolveError> {
        let requests: Vec<(String, Relation)> = requests
            .iter()
            .map(|r| (r.to_string(), parse_relation(r).unwrap()))
            .collect();
        resolve(
            u,
            installed,
            &requests,
            &Options {
                architecture: "amd64".into(),
                recommends,
            },
        )
    }

    const REPO: &str = "\
Package: app
Version: 1.0
Architecture: amd64
Pre-Depends: base
Depends: libfoo (>= 2), mta | mail-transport-agent, data
Recommends: extra

Package: base
Version: 1
Architecture: amd64

Package: libfoo
Version: 1.5
Architecture: amd64

Package: libfoo
Version: 2.1
Architecture: amd64
Depends: base (>= 1)

Package: libfoo
Version: 3.0
Architecture: arm64

Package: postfix
Version: 3.6
Architecture: amd64
Provides: mail-transport-agent
Priority: optional

Package: exim4
Version: 4.95
Architecture: amd64
Provides: mail-transport-agent
Priority: extra

Package: data
Version: 2
Architecture: all

Package: extra
Version: 1
Architecture: amd64
Depends: missing-thing
";

    #[test]
    fn closure_with_alternatives_virtuals_versions_pre_depends_and_all() {
        let u = universe(REPO);
        let got = run(&u, &Installed::default(), &["app"]).unwrap();
        assert_eq!(
            got,
            ["app=1.0", "base=1", "data=2", "libfoo=2.1", "postfix=3.6"],
            "mta is absent, so the virtual alternative is taken, through its best provider"
        );
    }

    #[test]
    fn highest_version_across_suites() {
        let u = universe(&format!(
            "{REPO}\nPackage: base\nVersion: 1.1\nArchitecture: amd64\n"
        ));
        let got = run(&u, &Installed::default(), &["libfoo"]).unwrap();
        assert_eq!(got, ["base=1.1", "libfoo=2.1"]);
        // A constraint the best version misses takes the best version that meets it.
        let got = run(&u, &Installed::default(), &["libfoo (<< 2)"]).unwrap();
        assert_eq!(got, ["libfoo=1.5"]);
    }

    #[test]
    fn chosen_alternative_is_preferred() {
        let u = universe(REPO);
        let got = run(&u, &Installed::default(), &["exim4", "app"]).unwrap();
        assert!(got.contains(&"exim4=4.95".to_string()), "{got:?}");
        assert!(!got.iter().any(|p| p.starts_with("postfix")), "{got:?}");
    }

    #[test]
    fn installed_packages_are_not_carried() {
        let u = universe(REPO);
        let installed = Installed::parse(
            "Package: base\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: libfoo\nStatus: deinstall ok config-files\nVersion: 2.1\n\nPackage: exim4-daemon\nStatus: install ok installed\nVersion: 4.95\nProvides: mail-transport-agent\n",
        )
        .unwrap();
        let r = run_with(&u, &installed, &["app", "base"], false).unwrap();
        assert_eq!(names(&u, &r), ["app=1.0", "data=2", "libfoo=2.1"]);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("base: already installed")),
            "{:?}",
            r.notes
        );
        // An installed version too old for a constraint does not count.
        let old = Installed::parse("Package: libfoo\nStatus: install ok installed\nVersion: 1.5\n")
            .unwrap();
        let got = run(&u, &old, &["libfoo (>= 2)"]).unwrap();
        assert_eq!(got, ["base=1", "libfoo=2.1"]);
    }

    #[test]
    fn recommends_are_followed_or_left_out() {
        let u = universe(&format!(
            "{REPO}\nPackage: nice\nVersion: 1\nArchitecture: all\nRecommends: data, extra\n"
        ));
        let r = run_with(&u, &Installed::default(), &["nice"], true).unwrap();
        assert_eq!(names(&u, &r), ["data=2", "nice=1"]);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("Recommends: extra: left out")),
            "{:?}",
            r.notes
        );
        let r = run_with(&u, &Installed::default(), &["nice"], false).unwrap();
        assert_eq!(names(&u, &r), ["nice=1"]);
    }

    #[test]
    fn failure_prints_the_chain() {
        let u = universe(&format!(
            "{REPO}\nPackage: top\nVersion: 1\nArchitecture: amd64\nDepends: mid\n\nPackage: mid\nVersion: 1\nArchitecture: all\nDepends: libfoo (>= 3)\n"
        ));
        let e = run(&u, &Installed::default(), &["top"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot resolve \"top\": libfoo (>= 3) cannot be satisfied: the versions available are 2.1, 1.5\n  the chain that failed:\n    requested: top\n    -> top 1 (amd64) Depends: mid\n    -> mid 1 (all) Depends: libfoo (>= 3)"
        );
        let e = run(&u, &Installed::default(), &["nothing-here"]).unwrap_err();
        assert!(e.reason.contains("no package nothing-here"), "{e}");
        let e = run(&u, &Installed::default(), &["mail-transport-agent"]).unwrap_err();
        assert!(
            e.reason
                .contains("virtual package provided by postfix, exim4"),
            "{e}"
        );
        let e = run(&u, &Installed::default(), &["extra"]).unwrap_err();
        assert!(e.reason.contains("missing-thing"), "{e}");
    }

    #[test]
    fn failing_alternative_falls_through_to_the_next() {
        let u = universe(
            "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: broken | good\n\nPackage: broken\nVersion: 1\nArchitecture: amd64\nDepends: absent\n\nPackage: good\nVersion: 1\nArchitecture: amd64\n",
        );
        let got = run(&u, &Installed::default(), &["a"]).unwrap();
        assert_eq!(got, ["a=1", "good=1"]);
    }

    #[test]
    fn versioned_provides() {
        let u = universe(
            "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: abi (>= 2)\n\nPackage: old\nVersion: 1\nArchitecture: amd64\nProvides: abi (= 1)\n\nPackage: new\nVersion: 1\nArchitecture: amd64\nProvides: abi (= 2)\n\nPackage: plain\nVersion: 1\nArchitecture: amd64\nProvides: abi\n",
        );
        let got = run(&u, &Installed::default(), &["a"]).unwrap();
        assert_eq!(got, ["a=1", "new=1"]);
    }

    #[test]
    fn version_conflict_between_two_needs() {
        let u = universe(
            "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: lib (= 1)\n\nPackage: b\nVersion: 1\nArchitecture: amd64\nDepends: lib (= 2)\n\nPackage: lib\nVersion: 1\nArchitecture: amd64\n\nPackage: lib\nVersion: 2\nArchitecture: amd64\n",
        );
        let e = run(&u, &Installed::default(), &["a", "b"]).unwrap_err();
        assert!(
            e.reason
                .contains("lib 2 (amd64) is needed, but lib 1 (amd64) was already chosen"),
            "{e}"
        );
        assert_eq!(e.chain, ["b 1 (amd64) Depends: lib (= 2)"]);
    }
}
