//! Transaction storage: a slab with generation-checked ids, so a stale [`TxId`] never reaches
//! a newer transaction and slots are reused without allocating.

use super::TxId;

/// Slots of `T`, addressed by [`TxId`].
pub(crate) struct Slab<T> {
    entries: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value` and returns its id.
    pub(crate) fn insert(&mut self, value: T) -> TxId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.entries.get_mut(index as usize) {
                slot.value = Some(value);
                return TxId {
                    index,
                    generation: slot.generation,
                };
            }
        }
        // Index u32::MAX is TxId::DETACHED; four billion live transactions are not a concern.
        let index = u32::try_from(self.entries.len()).unwrap_or(u32::MAX - 1);
        self.entries.push(Slot {
            generation: 0,
            value: Some(value),
        });
        TxId {
            index,
            generation: 0,
        }
    }

    /// The value of a live id.
    pub(crate) fn get(&self, id: TxId) -> Option<&T> {
        let slot = self.entries.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    /// The value of a live id, mutably.
    pub(crate) fn get_mut(&mut self, id: TxId) -> Option<&mut T> {
        let slot = self.entries.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// Takes the value out; the id dies and its slot is reused under a new generation.
    pub(crate) fn remove(&mut self, id: TxId) -> Option<T> {
        let slot = self.entries.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        Some(value)
    }

    /// Number of live values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
