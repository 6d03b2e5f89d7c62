//! The reader behind [`PushEvent::parse`]: serde visitors that read only the fields the decision
//! uses, borrow strings from the body, skip every other value through the parser's own skipping
//! (which checks it), and collect the commits' paths until there are too many to carry.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Commit, PayloadError, PushEvent, Repository};
use crate::job::MAX_JOB_PATHS;
use crate::names;

/// Reads a push payload that starts with `{`; the caller validates the fields afterwards.
pub(super) fn read(body: &[u8]) -> Result<PushEvent<'_>, PayloadError> {
    let mut reader = Reader::default();
    backend::read(body, &mut reader).map_err(|e| reader.error(e))
}

/// Collects the paths of the commits while the push is read, and remembers where the reader is so
/// that an error names its field.
struct Reader<'a> {
    at: At,
    /// An error the reader decided itself (a missing or repeated field); wins over the parser's.
    refused: Option<PayloadError>,
    paths: Vec<Cow<'a, str>>,
    /// When `paths` next gets sorted and deduplicated, to see whether the distinct ones passed
    /// [`MAX_JOB_PATHS`]: as soon as they could have (`MAX_JOB_PATHS + 1` listed), then at twice
    /// the distinct count, so a payload repeating the same few paths costs a sort per doubling.
    compact_at: usize,
    too_many_paths: bool,
    invalid: Option<PayloadError>,
}

impl Default for Reader<'_> {
    fn default() -> Self {
        Reader {
            at: At::Top,
            refused: None,
            paths: Vec::new(),
            compact_at: MAX_JOB_PATHS + 1,
            too_many_paths: false,
            invalid: None,
        }
    }
}

/// Where in the payload the reader is.
#[derive(Debug, Clone, Copy, Default)]
enum At {
    #[default]
    Top,
    Field(&'static str),
    Repository(&'static str),
    HeadCommit(&'static str),
    Commit(usize, &'static str),
    Path(usize, &'static str, usize),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Top => Ok(()),
            At::Field(n) => f.write_str(n),
            At::Repository(n) => write!(f, "repository.{n}"),
            At::HeadCommit(n) => write!(f, "head_commit.{n}"),
            At::Commit(i, "") => write!(f, "commits[{i}]"),
            At::Commit(i, n) => write!(f, "commits[{i}].{n}"),
            At::Path(i, list, j) => write!(f, "commits[{i}].{list}[{j}]"),
        }
    }
}

impl<'a> Reader<'a> {
    /// Records a refusal the reader decided, and the parser error that stops the parse.
    fn refuse<E: de::Error>(&mut self, e: PayloadError) -> E {
        let msg = e.to_string();
        self.refused = Some(e);
        E::custom(msg)
    }

    fn note_invalid(&mut self, why: names::Invalid) {
        if self.invalid.is_none() {
            self.invalid = Some(PayloadError::invalid(self.at.to_string(), why));
        }
    }

    fn add_path(&mut self, path: Cow<'a, str>) {
        match names::check_repo_path(&path) {
            Ok(()) => {
                self.paths.push(path);
                if self.paths.len() >= self.compact_at {
                    self.compact();
                }
            }
            Err(why) => self.note_invalid(why),
        }
    }

    fn compact(&mut self) {
        self.paths.sort_unstable();
        self.paths.dedup();
        if self.paths.len() > MAX_JOB_PATHS {
            self.too_many_paths = true;
            self.paths = Vec::new();
        }
        self.compact_at = (MAX_JOB_PATHS + 1).max(2 * self.paths.len());
    }

    /// The payload error for a parser error: the reader's own refusal, a value of the wrong type
    /// (named by where the reader was), or a document that is not well-formed JSON.
    fn error(&mut self, e: backend::Error) -> PayloadError {
        if let Some(refused) = self.refused.take() {
            return refused;
        }
        let reason = e.message.split(" at line ").next().unwrap_or(&e.message);
        match self.at {
            At::Top => PayloadError::Json(reason.to_string()),
            at if e.data => PayloadError::InvalidField {
                field: at.to_string(),
                reason: reason.to_string(),
            },
            _ => PayloadError::Json(reason.to_string()),
        }
    }
}

/// The JSON parser behind [`PushEvent::parse`].
mod backend {
    use serde::de::DeserializeSeed;

    use super::{PushEvent, PushSeed, Reader};

    pub(super) struct Error {
        /// The document is well-formed but a value has the wrong type (or the reader refused it).
        pub data: bool,
        pub message: String,
    }

    impl From<serde_json::Error> for Error {
        fn from(e: serde_json::Error) -> Self {
            Error {
                data: e.is_data(),
                message: e.to_string(),
            }
        }
    }

    pub(super) fn read<'a>(
        body: &'a [u8],
        reader: &mut Reader<'a>,
    ) -> Result<PushEvent<'a>, Error> {
        // One UTF-8 check of the whole body up front, so that the parser need not check the
        // strings it reads and the ones it skips are checked too.
        let text = std::str::from_utf8(body).map_err(|_| Error {
            data: false,
            message: "the body is not valid UTF-8".into(),
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let push = PushSeed { r: reader }.deserialize(&mut de)?;
        reader.at = super::At::Top;
        de.end()?;
        Ok(push)
    }
}

/// Reads a string, borrowed from the body when it holds no escape.
struct Str;

impl<'de> DeserializeSeed<'de> for Str {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Str {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// `null` or what `S` reads.
struct OrNull<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OrNull<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a value")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// A key of an object the reader knows, matched without building a string.
struct Key<K>(fn(&str) -> K);

impl<'de, K> DeserializeSeed<'de> for Key<K> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, K> Visitor<'de> for Key<K> {
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        Ok((self.0)(v))
    }
}

/// Stores one field's value, refusing a field that appears twice (as serde's derive does).
fn once<'de, A, T>(
    map: &mut A,
    r: &mut Reader<'de>,
    at: At,
    slot: &mut Option<T>,
    read: impl FnOnce(&mut A, &mut Reader<'de>) -> Result<T, A::Error>,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
{
    r.at = at;
    if slot.is_some() {
        return Err(r.refuse(PayloadError::InvalidField {
            field: at.to_string(),
            reason: "appears more than once".into(),
        }));
    }
    *slot = Some(read(map, r)?);
    Ok(())
}

fn required<T, E: de::Error>(r: &mut Reader<'_>, v: Option<T>, name: &str) -> Result<T, E> {
    match v {
        Some(v) => Ok(v),
        None => Err(r.refuse(PayloadError::MissingField(name.to_string()))),
    }
}

enum TopKey {
    Ref,
    Before,
    After,
    Created,
    Deleted,
    Forced,
    Commits,
    HeadCommit,
    Repository,
    Other,
}

fn top_key(k: &str) -> TopKey {
    match k {
        "ref" => TopKey::Ref,
        "before" => TopKey::Before,
        "after" => TopKey::After,
        "created" => TopKey::Created,
        "deleted" => TopKey::Deleted,
        "forced" => TopKey::Forced,
        "commits" => TopKey::Commits,
        "head_commit" => TopKey::HeadCommit,
        "repository" => TopKey::Repository,
        _ => TopKey::Other,
    }
}

struct PushSeed<'r, 'de> {
    r: &'r mut Reader<'de>,
}

impl<'de> DeserializeSeed<'de> for PushSeed<'_, 'de> {
    type Value = PushEvent<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PushSeed<'_, 'de> {
    type Value = PushEvent<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a push event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let r = self.r;
        let (mut git_ref, mut before, mut after) = (None, None, None);
        let (mut created, mut deleted, mut forced) = (None, None, None);
        let (mut head_commit, mut repository, mut commit_count) = (None, None, None);
        while let Some(key) = map.next_key_seed(Key(top_key))? {
            match key {
                TopKey::Ref => once(&mut map, r, At::Field("ref"), &mut git_ref, |m, _| {
                    m.next_value_seed(Str)
                })?,
                TopKey::Before => once(&mut map, r, At::Field("before"), &mut before, |m, _| {
                    m.next_value_seed(Str)
                })?,
                TopKey::After => once(&mut map, r, At::Field("after"), &mut after, |m, _| {
                    m.next_value_seed(Str)
                })?,
                TopKey::Created => {
                    once(&mut map, r, At::Field("created"), &mut created, |m, _| {
                        m.next_value::<bool>()
                    })?
                }
                TopKey::Deleted => {
                    once(&mut map, r, At::Field("deleted"), &mut deleted, |m, _| {
                        m.next_value::<bool>()
                    })?
                }
                TopKey::Forced => once(&mut map, r, At::Field("forced"), &mut forced, |m, _| {
                    m.next_value::<bool>()
                })?,
                TopKey::Commits => once(
                    &mut map,
                    r,
                    At::Field("commits"),
                    &mut commit_count,
                    |m, r| m.next_value_seed(CommitsSeed { r }),
                )?,
                TopKey::HeadCommit => once(
                    &mut map,
                    r,
                    At::Field("head_commit"),
                    &mut head_commit,
                    |m, r| m.next_value_seed(OrNull(HeadCommitSeed { r })),
                )?,
                TopKey::Repository => once(
                    &mut map,
                    r,
                    At::Field("repository"),
                    &mut repository,
                    |m, r| m.next_value_seed(RepositorySeed { r }),
                )?,
                TopKey::Other => {
                    r.at = At::Top;
                    map.next_value::<IgnoredAny>()?;
                }
            }
            r.at = At::Top;
        }
        // Missing fields are named in the order serde's derive named them.
        let git_ref = required(r, git_ref, "ref")?;
        let before = required(r, before, "before")?;
        let after = required(r, after, "after")?;
        let repository = required(r, repository, "repository")?;
        if !r.too_many_paths {
            r.compact();
        }
        Ok(PushEvent {
            git_ref,
            before,
            after,
            created: created.unwrap_or(false),
            deleted: deleted.unwrap_or(false),
            forced: forced.unwrap_or(false),
            head_commit: head_commit.flatten(),
            repository,
            commit_count: commit_count.unwrap_or(0),
            paths: std::mem::take(&mut r.paths),
            too_many_paths: r.too_many_paths,
            invalid: r.invalid.take(),
        })
    }
}

enum RepoKey {
    FullName,
    CloneUrl,
    Private,
    DefaultBranch,
    MasterBranch,
    Other,
}

fn repo_key(k: &str) -> RepoKey {
    match k {
        "full_name" => RepoKey::FullName,
        "clone_url" => RepoKey::CloneUrl,
        "private" => RepoKey::Private,
        "default_branch" => RepoKey::DefaultBranch,
        "master_branch" => RepoKey::MasterBranch,
        _ => RepoKey::Other,
    }
}

struct RepositorySeed<'r, 'de> {
    r: &'r mut Reader<'de>,
}

impl<'de> DeserializeSeed<'de> for RepositorySeed<'_, 'de> {
    type Value = Repository<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RepositorySeed<'_, 'de> {
    type Value = Repository<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a repository object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let r = self.r;
        let (mut full_name, mut clone_url, mut private) = (None, None, None);
        let (mut default_branch, mut master_branch) = (None, None);
        while let Some(key) = map.next_key_seed(Key(repo_key))? {
            match key {
                RepoKey::FullName => once(
                    &mut map,
                    r,
                    At::Repository("full_name"),
                    &mut full_name,
                    |m, _| m.next_value_seed(Str),
                )?,
                RepoKey::CloneUrl => once(
                    &mut map,
                    r,
                    At::Repository("clone_url"),
                    &mut clone_url,
                    |m, _| m.next_value_seed(Str),
                )?,
                RepoKey::Private => once(
                    &mut map,
                    r,
                    At::Repository("private"),
                    &mut private,
                    |m, _| m.next_value::<bool>(),
                )?,
                RepoKey::DefaultBranch => once(
                    &mut map,
                    r,
                    At::Repository("default_branch"),
                    &mut default_branch,
                    |m, _| m.next_value_seed(OrNull(Str)),
                )?,
                RepoKey::MasterBranch => once(
                    &mut map,
                    r,
                    At::Repository("master_branch"),
                    &mut master_branch,
                    |m, _| m.next_value_seed(OrNull(Str)),
                )?,
                RepoKey::Other => {
                    r.at = At::Field("repository");
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Repository {
            full_name: required(r, full_name, "repository.full_name")?,
            clone_url: required(r, clone_url, "repository.clone_url")?,
            private: private.unwrap_or(false),
            default_branch: default_branch.flatten(),
            master_branch: master_branch.flatten(),
        })
    }
}

enum CommitKey {
    Id,
    Added,
    Removed,
    Modified,
    Other,
}

fn commit_key(k: &str) -> CommitKey {
    match k {
        "id" => CommitKey::Id,
        "added" => CommitKey::Added,
        "removed" => CommitKey::Removed,
        "modified" => CommitKey::Modified,
        _ => CommitKey::Other,
    }
}

struct HeadCommitSeed<'r, 'de> {
    r: &'r mut Reader<'de>,
}

impl<'de> DeserializeSeed<'de> for HeadCommitSeed<'_, 'de> {
    type Value = Commit<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeadCommitSeed<'_, 'de> {
    type Value = Commit<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a commit object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let r = self.r;
        let mut id = None;
        while let Some(key) = map.next_key_seed(Key(commit_key))? {
            if let CommitKey::Id = key {
                once(&mut map, r, At::HeadCommit("id"), &mut id, |m, _| {
                    m.next_value_seed(Str)
                })?;
            } else {
                r.at = At::Field("head_commit");
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Commit {
            id: required(r, id, "head_commit.id")?,
        })
    }
}

/// `commits`: read into the reader's paths; the value is how many commits were listed.
struct CommitsSeed<'r, 'de> {
    r: &'r mut Reader<'de>,
}

impl<'de> DeserializeSeed<'de> for CommitsSeed<'_, 'de> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CommitsSeed<'_, 'de> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of commits")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let r = self.r;
        let mut i = 0;
        loop {
            let more = if r.too_many_paths {
                // Only counted (and checked for well-formedness by the skip).
                r.at = At::Field("commits");
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                r.at = At::Commit(i, "");
                seq.next_element_seed(CommitSeed { r, i })?.is_some()
            };
            if !more {
                return Ok(i);
            }
            i += 1;
        }
    }
}

struct CommitSeed<'r, 'de> {
    r: &'r mut Reader<'de>,
    i: usize,
}

impl<'de> DeserializeSeed<'de> for CommitSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CommitSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a commit object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (r, i) = (self.r, self.i);
        let mut id: Option<()> = None;
        let (mut added, mut removed, mut modified) = (None, None, None);
        while let Some(key) = map.next_key_seed(Key(commit_key))? {
            let (list, slot) = match key {
                CommitKey::Id => {
                    once(&mut map, r, At::Commit(i, "id"), &mut id, |m, r| {
                        let id = m.next_value_seed(Str)?;
                        if let Err(why) = names::check_sha(&id) {
                            r.note_invalid(why);
                        }
                        Ok(())
                    })?;
                    continue;
                }
                CommitKey::Added => ("added", &mut added),
                CommitKey::Removed => ("removed", &mut removed),
                CommitKey::Modified => ("modified", &mut modified),
                CommitKey::Other => {
                    r.at = At::Commit(i, "");
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            once(&mut map, r, At::Commit(i, list), slot, |m, r| {
                if r.too_many_paths {
                    m.next_value::<IgnoredAny>().map(drop)
                } else {
                    m.next_value_seed(PathsSeed { r, i, list })
                }
            })?;
        }
        r.at = At::Commit(i, "");
        if id.is_none() && !r.too_many_paths {
            return Err(r.refuse(PayloadError::MissingField(format!("commits[{i}].id"))));
        }
        Ok(())
    }
}

/// One of a commit's `added`, `removed`, `modified` lists.
struct PathsSeed<'r, 'de> {
    r: &'r mut Reader<'de>,
    i: usize,
    list: &'static str,
}

impl<'de> DeserializeSeed<'de> for PathsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PathsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of paths")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let r = self.r;
        let mut j = 0;
        loop {
            if r.too_many_paths {
                r.at = At::Commit(self.i, self.list);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            r.at = At::Path(self.i, self.list, j);
            match seq.next_element_seed(Str)? {
                Some(path) => r.add_path(path),
                None => return Ok(()),
            }
            j += 1;
        }
    }
}
