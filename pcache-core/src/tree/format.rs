//! A tree's stored form: the index and the contents, and their validation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

/// One node of a tree; paths are relative, `/`-separated. A file's contents
/// are the next `len` bytes of the tree's data; `holes` are the offsets in
/// them where the tree's place (its directory's path) was, in rising order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Node {
    Dir {
        path: String,
    },
    File {
        path: String,
        executable: bool,
        len: u64,
        holes: Vec<u64>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// `pctree1` had no holes in its files.
const TREE_MAGIC: [u8; 8] = *b"pctree2\0";

/// The magic and the index's length, before the index.
pub(crate) const HEAD_LEN: usize = 12;

fn bad(what: &str) -> String {
    format!("invalid stored file tree: {what}")
}

impl Node {
    pub(super) fn path(&self) -> &str {
        match self {
            Node::Dir { path } | Node::File { path, .. } | Node::Symlink { path, .. } => path,
        }
    }
}

/// A validated file tree: its index, and its encoding, in which the files'
/// contents start at `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub(super) nodes: Vec<Node>,
    pub(super) bytes: Vec<u8>,
    data: usize,
}

impl Tree {
    /// A tree of `nodes`, with each file's contents in `contents` (in the
    /// order of the file nodes).
    pub(super) fn new(nodes: Vec<Node>, contents: &[Vec<u8>]) -> Tree {
        // Plain data always serializes.
        let index = rmp_serde::to_vec(&nodes).expect("tree index serializes");
        let data_len: usize = contents.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(12 + index.len() + data_len);
        bytes.extend_from_slice(&TREE_MAGIC);
        bytes.extend_from_slice(&(index.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&index);
        let data = bytes.len();
        for file in contents {
            bytes.extend_from_slice(file);
        }
        Tree { nodes, bytes, data }
    }

    /// Parses and validates an encoded tree.
    pub(super) fn decode(bytes: Vec<u8>) -> Result<Tree, String> {
        let index_len = Tree::index_len(&bytes)?;
        let data = HEAD_LEN + index_len;
        let index = bytes
            .get(HEAD_LEN..data)
            .ok_or_else(|| bad("index past the end"))?;
        let nodes = Tree::decode_index(index, (bytes.len() - data) as u64)?;
        Ok(Tree { nodes, bytes, data })
    }

    /// The length of the index, from the first [`HEAD_LEN`] bytes of an
    /// encoded tree.
    pub(crate) fn index_len(head: &[u8]) -> Result<usize, String> {
        if head.get(..8) != Some(&TREE_MAGIC[..]) {
            return Err(bad("no tree tag"));
        }
        head.get(8..HEAD_LEN)
            .and_then(|b| b.try_into().ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .ok_or_else(|| bad("truncated"))
    }

    /// Parses and validates an index whose files' contents take `data_len`
    /// bytes.
    pub(crate) fn decode_index(index: &[u8], data_len: u64) -> Result<Vec<Node>, String> {
        let nodes: Vec<Node> = rmp_serde::from_slice(index).map_err(|e| bad(&e.to_string()))?;
        validate(&nodes).map_err(|e| e.to_string())?;
        let lengths = nodes.iter().try_fold(0u64, |sum, node| match node {
            Node::File { len, .. } => sum.checked_add(*len),
            _ => Some(sum),
        });
        if lengths != Some(data_len) {
            return Err(bad("file lengths do not add up"));
        }
        let holes_fit = nodes.iter().all(|node| match node {
            Node::File { len, holes, .. } => {
                holes.windows(2).all(|w| w[0] <= w[1]) && holes.last().is_none_or(|h| h <= len)
            }
            _ => true,
        });
        if !holes_fit {
            return Err(bad("holes out of order or past the end of their file"));
        }
        Ok(nodes)
    }

    /// The files' contents, one after the other.
    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[self.data..]
    }

    /// Every node, with each file's stored contents.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&Node, &[u8])> {
        let mut at = self.data;
        self.nodes.iter().map(move |node| {
            let contents = match node {
                // `decode` checked that the lengths add up to the data.
                Node::File { len, .. } => {
                    let start = at;
                    at += *len as usize;
                    &self.bytes[start..at]
                }
                _ => &[][..],
            };
            (node, contents)
        })
    }

    /// Every path in the tree, relative and `/`-separated, parents before
    /// children.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(Node::path)
    }

    /// How many bytes the files hold, as stored.
    pub fn content_bytes(&self) -> u64 {
        (self.bytes.len() - self.data) as u64
    }

    /// The first path where `other` differs from this tree (a node missing,
    /// added, or of another kind, mode, target or contents), or `None` when
    /// they hold the same. For `PCACHE=verify`.
    pub fn first_difference(&self, other: &Tree) -> Option<String> {
        let mut mine = self.entries();
        let mut theirs = other.entries();
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return None,
                (Some((a, _)), None) => return Some(format!("`{}` is missing", a.path())),
                (None, Some((b, _))) => return Some(format!("`{}` is new", b.path())),
                (Some((a, ca)), Some((b, cb))) => {
                    if a.path() != b.path() {
                        let (first, what) = if a.path() < b.path() {
                            (a.path(), "is missing")
                        } else {
                            (b.path(), "is new")
                        };
                        return Some(format!("`{first}` {what}"));
                    }
                    if a != b || ca != cb {
                        return Some(format!("`{}` differs", a.path()));
                    }
                }
            }
        }
    }
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.bytes)
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        let bytes = ByteBuf::deserialize(d)?.into_vec();
        Tree::decode(bytes).map_err(serde::de::Error::custom)
    }
}

/// A node that would leave the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Escape {
    pub(super) path: String,
    pub(super) reason: &'static str,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` in a stored file tree: {}", self.path, self.reason)
    }
}

/// Checks that every path stays inside the tree.
pub(super) fn validate(nodes: &[Node]) -> Result<(), Escape> {
    for node in nodes {
        let path = node.path();
        let reason = if !is_safe_relative(path) {
            "not a plain relative path (absolute, `..`, `.`, empty part or separator)"
        } else if matches!(node, Node::Symlink { target, .. } if !link_stays_inside(path, target)) {
            "a symlink that points out of the tree"
        } else {
            continue;
        };
        return Err(Escape {
            path: path.to_owned(),
            reason,
        });
    }
    Ok(())
}

/// Non-empty, relative, `/`-separated, with no `.`, `..` or empty component
/// and no backslash, colon or NUL (which other platforms read as separators
/// or drive prefixes).
pub(super) fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\\', ':', '\0'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Whether `target`, resolved from the directory holding `link`, stays
/// inside the tree.
pub(super) fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains(['\\', ':', '\0']) {
        return false;
    }
    let mut depth = link.split('/').count() - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}
