//! What the planner knows about the data a plan reads: the typed attribute columns,
//! which attribute keys may sit in the fallback lists, and the distinct values of
//! low-cardinality string columns. For a table these describe the union of its
//! blocks; for one block they let a search skip it.

use std::collections::{HashMap, HashSet};

use traceql_parser::ast::AttributeScope;

use crate::schema::TypedAttribute;

/// Facts about a span table or one block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// The typed attribute columns.
    pub typed: Vec<TypedAttribute>,
    /// The (scope, key) pairs found in the fallback lists; `None` if unknown, in which
    /// case any key may be there.
    pub fallback: Option<HashSet<(AttributeScope, String)>>,
    /// Complete sets of the distinct values of some string columns, by column name.
    pub dictionaries: HashMap<String, HashSet<String>>,
    /// Whether some block lacks child counts (written before block format 2), so
    /// `span:childCount` cannot be answered.
    pub missing_child_counts: bool,
}

impl Facts {
    /// Facts that only list the typed columns: any key may be in the fallback lists.
    pub fn with_typed(typed: Vec<TypedAttribute>) -> Facts {
        Facts {
            typed,
            fallback: None,
            dictionaries: HashMap::new(),
            missing_child_counts: false,
        }
    }

    /// Whether attribute `key` of `scope` may be in the fallback list of that scope.
    pub fn may_be_in_fallback(&self, scope: AttributeScope, key: &str) -> bool {
        self.fallback
            .as_ref()
            .is_none_or(|keys| keys.contains(&(scope, key.to_string())))
    }

    /// The typed columns of attribute `key` of `scope`.
    pub fn typed_columns<'a>(
        &'a self,
        scope: AttributeScope,
        key: &'a str,
    ) -> impl Iterator<Item = &'a TypedAttribute> + 'a {
        self.typed
            .iter()
            .filter(move |t| t.scope == scope && t.key == key)
    }

    /// The facts of a table made of blocks with `facts`: the union of typed columns
    /// and fallback keys (dictionaries are per block and dropped).
    pub fn union<'a>(facts: impl IntoIterator<Item = &'a Facts>) -> Facts {
        let mut out = Facts {
            typed: Vec::new(),
            fallback: Some(HashSet::new()),
            dictionaries: HashMap::new(),
            missing_child_counts: false,
        };
        for f in facts {
            out.missing_child_counts |= f.missing_child_counts;
            for t in &f.typed {
                if !out.typed.contains(t) {
                    out.typed.push(t.clone());
                }
            }
            out.fallback = match (out.fallback.take(), &f.fallback) {
                (Some(mut all), Some(keys)) => {
                    all.extend(keys.iter().cloned());
                    Some(all)
                }
                _ => None,
            };
        }
        out.typed.sort_by(|a, b| a.column.cmp(&b.column));
        out
    }
}
