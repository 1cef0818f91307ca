//! Names and binding strengths of the syntax tree's operators and functions.

/// Binding strengths: higher binds tighter. Field expressions, spanset expressions,
/// scalar filters and metrics arithmetic share one scale.
pub mod precedence {
    /// `|` between pipeline stages.
    pub const PIPE: u8 = 1;
    /// `&&` and `||` (one level, as in Tempo).
    pub const LOGIC: u8 = 2;
    /// Comparisons, regex matches and the structural operators.
    pub const RELATION: u8 = 3;
    /// `+`, `-` and prefix `-`.
    pub const ADDITIVE: u8 = 4;
    /// Prefix `!`.
    pub const NOT: u8 = 5;
    /// `*`, `/`, `%`.
    pub const MULTIPLICATIVE: u8 = 6;
    /// `^` (right-associative).
    pub const POWER: u8 = 7;
    /// The operand of a prefix `-` at the top level (scalar and metrics expressions):
    /// tighter than any infix operator.
    pub const PREFIX_MINUS_OPERAND: u8 = 8;
    /// Atoms: literals, fields, `{ … }`, calls, parenthesised forms (for the printer).
    pub const ATOM: u8 = 10;
}

/// A function of the language: aggregates, pipeline stages, metrics functions and
/// second stages.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub enum Function {
    /// `count()`
    Count,
    /// `avg(e)`
    Avg,
    /// `min(e)`
    Min,
    /// `max(e)`
    Max,
    /// `sum(e)`
    Sum,
    /// `by(e)`
    By,
    /// `select(a, …)`
    Select,
    /// `coalesce()`
    Coalesce,
    /// `rate()`
    Rate,
    /// `count_over_time()`
    CountOverTime,
    /// `min_over_time(f)`
    MinOverTime,
    /// `max_over_time(f)`
    MaxOverTime,
    /// `avg_over_time(f)`
    AvgOverTime,
    /// `sum_over_time(f)`
    SumOverTime,
    /// `quantile_over_time(f, q, …)`
    QuantileOverTime,
    /// `histogram_over_time(f)`
    HistogramOverTime,
    /// `compare({ … }, …)`
    Compare,
    /// `topk(n)`
    TopK,
    /// `bottomk(n)`
    BottomK,
}

impl Function {
    /// Every function with its name.
    pub const ALL: [(&'static str, Function); 19] = [
        ("count", Function::Count),
        ("avg", Function::Avg),
        ("min", Function::Min),
        ("max", Function::Max),
        ("sum", Function::Sum),
        ("by", Function::By),
        ("select", Function::Select),
        ("coalesce", Function::Coalesce),
        ("rate", Function::Rate),
        ("count_over_time", Function::CountOverTime),
        ("min_over_time", Function::MinOverTime),
        ("max_over_time", Function::MaxOverTime),
        ("avg_over_time", Function::AvgOverTime),
        ("sum_over_time", Function::SumOverTime),
        ("quantile_over_time", Function::QuantileOverTime),
        ("histogram_over_time", Function::HistogramOverTime),
        ("compare", Function::Compare),
        ("topk", Function::TopK),
        ("bottomk", Function::BottomK),
    ];

    /// The function called `name`.
    pub fn from_name(name: &str) -> Option<Function> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("every function is listed")
    }
}
