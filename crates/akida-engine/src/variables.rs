//! Named layer variables (weights, thresholds) as typed, shaped arrays.

/// The element values of a variable.
#[derive(Debug, Clone, PartialEq)]
pub enum VariableData {
    I8(Vec<i8>),
    I32(Vec<i32>),
    F32(Vec<f32>),
}

/// A variable as exchanged with users: a row-major array and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub data: VariableData,
}

/// Values given to `set_variable`, before they are checked against the variable's type and range.
#[derive(Debug, Clone, PartialEq)]
pub enum VariableValues {
    /// From an integer array.
    Int(Vec<i64>),
    /// From a floating-point array.
    Float(Vec<f64>),
    /// Already in the variable's element type (still checked for range).
    Exact(VariableData),
}

impl VariableData {
    pub fn len(&self) -> usize {
        match self {
            VariableData::I8(v) => v.len(),
            VariableData::I32(v) => v.len(),
            VariableData::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl VariableValues {
    pub fn len(&self) -> usize {
        match self {
            VariableValues::Int(v) => v.len(),
            VariableValues::Float(v) => v.len(),
            VariableValues::Exact(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
