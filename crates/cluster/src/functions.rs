//! TraceQL field expressions (a regex, arithmetic, an unscoped attribute …) on workers.
//!
//! A plan calls each of them as a DataFusion function named by its TraceQL text
//! (`{ name =~ "GET .*" }`). datafusion-distributed 4.0 asks its own codec first for
//! every function, which takes them all by name, so a worker finds a function only in
//! its session's registry. So the coordinator sends each query's functions along as a
//! configuration extension ([`ShippedFunctions`], forwarded in the headers of each task),
//! and the worker compiles them again ([`FieldExprSpec::to_udf`]) and registers them
//! before it decodes the plan.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use traceql_planner::eval::udf::FieldExprSpec;

/// The one key of the extension: the functions, as base64 of a JSON list of specs
/// (header values must be plain ASCII).
const KEY: &str = "functions";

/// The field expressions of the query being shipped, by name. Clones of the value share
/// them: the plan's task contexts see what [`CollectFunctions`] found in it. A copy of
/// the configuration that holds it (`ExtensionOptions::cloned`) gets a map of its own,
/// and the engine plans each query in a configuration of its own, so queries planned at
/// the same time (`traceql serve`) each ship their own functions.
#[derive(Clone, Debug, Default)]
pub struct ShippedFunctions {
    specs: Arc<Mutex<BTreeMap<String, FieldExprSpec>>>,
}

impl ShippedFunctions {
    fn specs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FieldExprSpec>> {
        self.specs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The functions, compiled again.
    pub fn udfs(&self) -> Result<Vec<ScalarUDF>> {
        self.specs().values().map(FieldExprSpec::to_udf).collect()
    }
}

impl ConfigExtension for ShippedFunctions {
    const PREFIX: &'static str = "traceql";
}

impl ExtensionOptions for ShippedFunctions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(ShippedFunctions {
            specs: Arc::new(Mutex::new(self.specs().clone())),
        })
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if key != KEY {
            return Err(DataFusionError::Configuration(format!(
                "unknown option traceql.{key}"
            )));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            DataFusionError::Plan(format!("invalid shipped functions: {e}"))
        };
        let json = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| invalid(&e))?;
        let specs: Vec<FieldExprSpec> = serde_json::from_slice(&json).map_err(|e| invalid(&e))?;
        let mut held = self.specs();
        held.clear();
        for spec in specs {
            held.insert(spec.name(), spec);
        }
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let specs: Vec<FieldExprSpec> = self.specs().values().cloned().collect();
        let json = serde_json::to_vec(&specs).unwrap_or_default();
        vec![ConfigEntry {
            key: KEY.to_string(),
            value: Some(base64::engine::general_purpose::STANDARD.encode(json)),
            description: "the TraceQL field expressions a shipped plan calls",
        }]
    }
}

/// Records the field expressions a physical plan calls in the session's
/// [`ShippedFunctions`], the last rule to run before the plan is cut into stages.
/// Two different functions of one name in one plan are refused: a worker could not tell
/// them apart.
#[derive(Debug)]
pub struct CollectFunctions;

impl PhysicalOptimizerRule for CollectFunctions {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(shipped) = config.extensions.get::<ShippedFunctions>() else {
            return Ok(plan);
        };
        let mut found: BTreeMap<String, FieldExprSpec> = BTreeMap::new();
        let mut clash = None;
        plan.apply(|node| {
            node.apply_expressions(&mut |expr| {
                expr.apply(|e| {
                    if let Some(call) = e.downcast_ref::<ScalarFunctionExpr>()
                        && let Some(spec) = FieldExprSpec::of(call.fun())
                    {
                        let name = spec.name();
                        match found.get(&name) {
                            Some(seen) if *seen != spec => clash = Some(name),
                            _ => {
                                found.insert(name, spec);
                            }
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        if let Some(name) = clash {
            return Err(DataFusionError::NotImplemented(format!(
                "running `{name}` on a cluster is not supported yet: the query reads it \
                 over blocks with different attribute columns"
            )));
        }
        *shipped.specs() = found;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "traceql_collect_functions"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::Expr;
    use traceql_format::facts::Facts;
    use traceql_format::schema::columns as c;
    use traceql_planner::eval::udf::{Output, field_expr_call};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new(c::NAME, DataType::Utf8, true),
            Field::new(c::DURATION_NANO, DataType::UInt64, true),
        ])
    }

    /// The call of the field expression `text`.
    fn call(text: &str) -> Expr {
        let expr = traceql_parser::parse_field_expr(text).unwrap();
        field_expr_call(Some(&expr), Output::Filter, &schema(), &Facts::default()).unwrap()
    }

    #[test]
    fn functions_travel_as_one_option_and_compile_again() {
        let shipped = ShippedFunctions::default();
        for text in [r#"name =~ "GET .*" && duration > 1ms"#, "duration * 2 > 1s"] {
            let Expr::ScalarFunction(call) = call(text) else {
                panic!("a call");
            };
            let spec = FieldExprSpec::of(&call.func).unwrap();
            shipped.specs().insert(spec.name(), spec);
        }
        let [entry] = &shipped.entries()[..] else {
            panic!("one entry");
        };
        let value = entry.value.clone().unwrap();
        assert!(value.is_ascii());
        let mut received = ShippedFunctions::default();
        received.set(KEY, &value).unwrap();
        let names: Vec<String> = received
            .udfs()
            .unwrap()
            .iter()
            .map(|u| u.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                r#"{ duration * 2 > 1s }"#,
                r#"{ name =~ "GET .*" && duration > 1ms }"#
            ]
        );
        assert!(received.set(KEY, "not base64!").is_err());
        assert!(received.set("other", &value).is_err());
    }

    /// The names of the functions `config` would ship.
    fn shipped(config: &ConfigOptions) -> Vec<String> {
        let functions = config.extensions.get::<ShippedFunctions>().unwrap();
        functions.specs().keys().cloned().collect()
    }

    /// A plan that calls the field expression `text`.
    fn plan_calling(text: &str) -> Arc<dyn ExecutionPlan> {
        use datafusion::common::DFSchema;
        use datafusion::physical_plan::empty::EmptyExec;
        use datafusion::physical_plan::projection::ProjectionExec;
        let schema = Arc::new(schema());
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let state = datafusion::prelude::SessionContext::new().state();
        let expr = state.create_physical_expr(call(text), &df_schema).unwrap();
        let input = Arc::new(EmptyExec::new(schema));
        Arc::new(ProjectionExec::try_new(vec![(expr, "x".to_string())], input).unwrap())
    }

    /// Queries planned at the same time, each in its own copy of the session's
    /// configuration (as the engine plans them), ship their own functions only.
    #[test]
    fn each_copy_of_a_configuration_ships_its_own_functions() {
        let mut session = ConfigOptions::new();
        session.extensions.insert(ShippedFunctions::default());
        let (a, b) = (session.clone(), session.clone());
        CollectFunctions
            .optimize(plan_calling("duration * 2 > 1s"), &a)
            .unwrap();
        CollectFunctions
            .optimize(plan_calling(r#"name =~ "GET .*""#), &b)
            .unwrap();
        assert_eq!(shipped(&a), [r#"{ duration * 2 > 1s }"#]);
        assert_eq!(shipped(&b), [r#"{ name =~ "GET .*" }"#]);
        assert!(shipped(&session).is_empty());
    }
}
