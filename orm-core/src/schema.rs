//! The order in which a set of models' tables are created and dropped.

use crate::error::{Error, Result};
use crate::model::{ModelMeta, RelationKind};

/// The models of `set`, each after the models it references (a reference to itself is fine;
/// models in a reference cycle keep their order in the set). A reference to a model outside
/// the set is an error naming both.
pub fn creation_order(set: &[&'static ModelMeta]) -> Result<Vec<&'static ModelMeta>> {
    let mut unique: Vec<&'static ModelMeta> = Vec::with_capacity(set.len());
    for m in set {
        if !unique.iter().any(|u| u.same(m)) {
            unique.push(m);
        }
    }
    for m in &unique {
        for r in m.relations {
            if r.kind == RelationKind::HasMany {
                continue;
            }
            let target = (r.target)();
            if !unique.iter().any(|u| u.same(target)) {
                return Err(Error::MissingModel {
                    model: m.name,
                    references: target.name,
                });
            }
        }
    }
    fn visit(
        i: usize,
        all: &[&'static ModelMeta],
        state: &mut [u8],
        out: &mut Vec<&'static ModelMeta>,
    ) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for r in all[i].relations {
            if let RelationKind::BelongsTo { .. } = r.kind {
                let target = (r.target)();
                if let Some(j) = all.iter().position(|u| u.same(target)) {
                    visit(j, all, state, out);
                }
            }
        }
        state[i] = 2;
        out.push(all[i]);
    }
    let mut state = vec![0u8; unique.len()];
    let mut out = Vec::with_capacity(unique.len());
    for i in 0..unique.len() {
        visit(i, &unique, &mut state, &mut out);
    }
    Ok(out)
}
