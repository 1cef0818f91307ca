//! A compiled field expression as a DataFusion scalar function over the columns it
//! reads: the flag column of a `{ … }` filter, the expression's value as results show
//! it (for `by()`, `select()` and the attributes shown with results), or its numeric
//! value (for aggregates). Plans show the function by its TraceQL text.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::Result;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{ident, lit};
use traceql_parser::ast::{AttributeScope, FieldExpr};

use super::columns::ColKind;
use super::program::Program;
use traceql_format::entries::ValueBuilder;
use traceql_format::facts::Facts;
use traceql_format::schema::{TypedAttribute, value_column_type};

/// What the function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// `Boolean`: whether the span passes the filter.
    Filter,
    /// A value column ([`value_column_type`]): the first value as results show it
    /// ([`super::value::Val::shown`]), null for nil.
    Value,
    /// `Float64`: the first numeric value, null for nil or non-numbers.
    Number,
}

impl Output {
    /// How plans show a call: the TraceQL expression in its role.
    fn label(self, text: &str) -> String {
        match self {
            Output::Filter => format!("{{ {text} }}"),
            Output::Value => format!("value({text})"),
            Output::Number => format!("number({text})"),
        }
    }
}

/// A field expression as a scalar function.
#[derive(Debug)]
pub struct FieldExprUdf {
    program: Program,
    /// The expression compiled (`None` for `{ }`).
    expr: Option<FieldExpr>,
    /// The expression as TraceQL prints it, in its role (`{ … }`, `value(…)`).
    text: String,
    output: Output,
    signature: Signature,
}

impl PartialEq for FieldExprUdf {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.output == other.output
    }
}

impl Eq for FieldExprUdf {}

impl Hash for FieldExprUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
        self.output.hash(state);
    }
}

/// The call expression computing `expr` (`None` for `{ }`) as `output`, over the
/// span table with `schema` described by `facts`.
pub fn field_expr_call(
    expr: Option<&FieldExpr>,
    output: Output,
    schema: &Schema,
    facts: &Facts,
) -> Result<Expr> {
    let program = Program::compile(expr, schema, facts)?;
    if program.columns().is_empty() {
        // Reads nothing (e.g. an attribute no block has): a constant.
        let bound = program.bind(&[])?;
        return Ok(match output {
            Output::Filter => lit(bound.matches(0)?),
            Output::Value => {
                let mut out = ValueBuilder::default();
                let values = bound.values(0)?;
                match values.first() {
                    Some(v) => v.with_shown(|v| out.append(Some(v))),
                    None => out.append(None),
                }
                lit(ScalarValue::Struct(Arc::new(out.finish())))
            }
            Output::Number => lit(ScalarValue::Float64(
                bound.values(0)?.iter().find_map(|v| v.as_f64()),
            )),
        });
    }
    let args: Vec<Expr> = program
        .columns()
        .iter()
        .map(|(name, _)| ident(name.as_str()))
        .collect();
    let text = output.label(&expr.map(|e| e.to_string()).unwrap_or_default());
    let udf = FieldExprUdf {
        program,
        expr: expr.cloned(),
        text,
        output,
        signature: Signature::variadic_any(Volatility::Immutable),
    };
    Ok(ScalarUDF::new_from_impl(udf).call(args))
}

/// A field-expression function as another machine rebuilds it (a plan shipped to a
/// worker carries its functions this way): the expression's TraceQL text, its role, the
/// columns it reads and what it used of the table's facts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldExprSpec {
    /// The expression as TraceQL prints it (`None` for `{ }`).
    pub expr: Option<String>,
    /// What the function returns.
    pub output: Output,
    /// The columns it reads, in the order of its arguments, and how it views them.
    pub columns: Vec<(String, ColKind)>,
    /// The typed attribute columns it reads.
    pub typed: Vec<TypedAttribute>,
    /// The attributes it looks up in the fallback lists.
    pub fallback: Vec<(AttributeScope, String)>,
}

impl FieldExprSpec {
    /// The spec of `udf`, if it is a field-expression function.
    pub fn of(udf: &ScalarUDF) -> Option<FieldExprSpec> {
        let udf = udf.inner().downcast_ref::<FieldExprUdf>()?;
        let used = udf.program.facts_used();
        let mut fallback: Vec<(AttributeScope, String)> =
            used.fallback.iter().flatten().cloned().collect();
        fallback.sort_by(|a, b| (format!("{:?}", a.0), &a.1).cmp(&(format!("{:?}", b.0), &b.1)));
        Some(FieldExprSpec {
            expr: udf.expr.as_ref().map(|e| e.to_string()),
            output: udf.output,
            columns: udf.program.columns().to_vec(),
            typed: used.typed.clone(),
            fallback,
        })
    }

    /// The function's name: the expression in its role, as plans show it
    /// (`{ status = error }`, `value(span.http.route)`).
    pub fn name(&self) -> String {
        self.output.label(self.expr.as_deref().unwrap_or_default())
    }

    /// The function again: the expression parsed and compiled over the spec's columns
    /// with the facts it used. Fails if the text does not parse or compiles to a
    /// program that reads other columns.
    pub fn to_udf(&self) -> Result<ScalarUDF> {
        let expr = match &self.expr {
            Some(text) => Some(traceql_parser::parse_field_expr(text).map_err(|e| {
                datafusion::error::DataFusionError::Plan(format!(
                    "invalid field expression `{text}` in a shipped plan: {}",
                    e.message
                ))
            })?),
            None => None,
        };
        let schema = Schema::new(
            self.columns
                .iter()
                .map(|(name, kind)| Field::new(name, kind_type(*kind), true))
                .collect::<Vec<_>>(),
        );
        let facts = Facts {
            typed: self.typed.clone(),
            fallback: Some(self.fallback.iter().cloned().collect()),
            ..Facts::default()
        };
        let program = Program::compile(expr.as_ref(), &schema, &facts)?;
        if program.columns() != self.columns.as_slice() {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "field expression `{}` read other columns when compiled again",
                self.expr.as_deref().unwrap_or_default()
            )));
        }
        Ok(ScalarUDF::new_from_impl(FieldExprUdf {
            program,
            expr,
            text: self.name(),
            output: self.output,
            signature: Signature::variadic_any(Volatility::Immutable),
        }))
    }
}

/// A column type that a column viewed as `kind` may have: what the compiler checks of
/// typed attribute columns (it reads nothing else of the schema but the names).
fn kind_type(kind: ColKind) -> DataType {
    match kind {
        ColKind::Str => DataType::Utf8,
        ColKind::I8 => DataType::Int8,
        ColKind::I32 => DataType::Int32,
        ColKind::I64 => DataType::Int64,
        ColKind::U64 => DataType::UInt64,
        ColKind::F64 => DataType::Float64,
        ColKind::Bool => DataType::Boolean,
        ColKind::Id => DataType::FixedSizeBinary(16),
        ColKind::List => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        ColKind::Entries | ColKind::Elements => DataType::Null,
    }
}

/// The TraceQL expression of `expr` if it is the call of a `{ … }` filter made by
/// [`field_expr_call`]: what a block kind can test before it decodes rows.
pub fn filter_of(expr: &Expr) -> Option<&FieldExpr> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    let udf = call.func.inner().downcast_ref::<FieldExprUdf>()?;
    match udf.output {
        Output::Filter => udf.expr.as_ref(),
        _ => None,
    }
}

impl ScalarUDFImpl for FieldExprUdf {
    fn name(&self) -> &str {
        &self.text
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.output {
            Output::Filter => DataType::Boolean,
            Output::Value => value_column_type(),
            Output::Number => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let arrays = Program::normalize(&arrays)?;
        let bound = self.program.bind(&arrays)?;
        let array: ArrayRef = match self.output {
            Output::Filter => {
                let mut out = BooleanBuilder::with_capacity(rows);
                for row in 0..rows {
                    out.append_value(bound.matches(row)?);
                }
                Arc::new(out.finish())
            }
            Output::Value => {
                let mut out = ValueBuilder::default();
                for row in 0..rows {
                    match bound.values(row)?.first() {
                        Some(v) => v.with_shown(|v| out.append(Some(v))),
                        None => out.append(None),
                    }
                }
                Arc::new(out.finish())
            }
            Output::Number => {
                let mut out = Float64Builder::with_capacity(rows);
                for row in 0..rows {
                    let values = bound.values(row)?;
                    out.append_option(values.iter().find_map(|v| v.as_f64()));
                }
                Arc::new(out.finish())
            }
        };
        Ok(ColumnarValue::Array(array))
    }
}
