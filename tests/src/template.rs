//! Reads `template.yaml`: the rules' event patterns and the table's schema, so tests use exactly what deploys.

use anyhow::{Context, Result, anyhow};
use serde_norway::Value;

use crate::workspace_root;

/// The SAM template.
pub struct Template {
    resources: serde_norway::Mapping,
    parameters: serde_norway::Mapping,
}

/// One IAM statement of a function's inline policy: its Sid, actions, resources (as the template writes them) and
/// condition. Statements behind `!If` count as granted.
#[derive(Debug, Clone)]
pub struct Statement {
    pub function: String,
    pub sid: String,
    pub actions: Vec<String>,
    pub resources: Vec<Value>,
    pub condition: Value,
    /// The template condition the statement is granted under (`!If [UsesCodeDeploy, ...]`), if any.
    pub only_if: Option<String>,
}

/// An `AWS::Events::Rule` of the template.
#[derive(Debug, Clone)]
pub struct Rule {
    pub logical_id: String,
    pub event_pattern: serde_json::Value,
    /// True when the rule is on sluice's own bus (`EventBusName: !Ref EventBus`), false on the default bus.
    pub on_sluice_bus: bool,
}

impl Rule {
    /// Every `detail-type` its pattern names, however deep (`$or`).
    pub fn detail_types(&self) -> Vec<String> {
        fn collect(pattern: &serde_json::Value, found: &mut Vec<String>) {
            match pattern {
                serde_json::Value::Object(fields) => {
                    for (key, value) in fields {
                        match (key.as_str(), value) {
                            ("detail-type", serde_json::Value::Array(types)) => {
                                found.extend(types.iter().filter_map(|t| t.as_str().map(str::to_owned)));
                            }
                            _ => collect(value, found),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        collect(&self.event_pattern, &mut found);
        found
    }
}

/// One target of a rule: its id, whether it has a retry policy, and the queue (logical id) its dead letters go to.
#[derive(Debug, Clone)]
pub struct RuleTarget {
    pub rule: String,
    pub id: String,
    pub retry_policy: bool,
    pub dead_letters: Option<String>,
}

/// The stack parameters the harness deploys the template with, where a rule's pattern names them: every CodeBuild
/// project the tests and the demo start is named `*-build*` (a project of another name is not sluice's), and every
/// CodeDeploy application `web*`.
pub const PARAMETERS: [(&str, &str); 3] =
    [("BuildProjects", "*-build*"), ("DeployApplications", "web*"), ("SoakAlarms", "web-*")];

/// `value` with each `!Ref` to a parameter of [`PARAMETERS`] replaced by its value, and each `!If` by its first
/// branch (the harness's parameters meet every condition a rule names, `UsesCodeDeploy`); `None` if it names another
/// parameter.
fn resolved(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Tagged(tagged) if tagged.tag == "If" => resolved(tagged.value.as_sequence()?.get(1)?)?,
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            let name = tagged.value.as_str()?;
            Value::String(PARAMETERS.iter().find(|(parameter, _)| *parameter == name)?.1.to_owned())
        }
        Value::Sequence(items) => Value::Sequence(items.iter().map(resolved).collect::<Option<_>>()?),
        Value::Mapping(map) => {
            let mut resolved_map = serde_norway::Mapping::new();
            for (key, item) in map {
                resolved_map.insert(key.clone(), resolved(item)?);
            }
            Value::Mapping(resolved_map)
        }
        other => other.clone(),
    })
}

/// The logical id `!GetAtt X.Arn` or `!Ref X` names.
pub fn named(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => tagged.value.as_str().map(|v| v.trim_end_matches(".Arn").to_owned()),
        _ => None,
    }
}

/// An `AWS::DynamoDB::Table` of the template: (attribute, type) pairs and (attribute, key type) schemas.
#[derive(Debug, Clone)]
pub struct Table {
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<(String, Vec<(String, String)>)>,
}

fn string(value: &Value, what: &str) -> Result<String> {
    value.as_str().map(str::to_owned).ok_or_else(|| anyhow!("{what} is not a string"))
}

fn pairs(list: &Value, first: &str, second: &str) -> Result<Vec<(String, String)>> {
    list.as_sequence()
        .ok_or_else(|| anyhow!("expected a list of {first}/{second}"))?
        .iter()
        .map(|entry| Ok((string(&entry[first], first)?, string(&entry[second], second)?)))
        .collect()
}

impl Template {
    pub fn load() -> Result<Self> {
        let path = workspace_root().join("template.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let document: Value = serde_norway::from_str(&text).context("template.yaml is not YAML")?;
        let resources = document["Resources"].as_mapping().context("template.yaml has no Resources")?.clone();
        let parameters = document["Parameters"].as_mapping().cloned().unwrap_or_default();
        Ok(Self { resources, parameters })
    }

    /// The parameter `name`'s declaration (`Type`, `Default`, ...), or `Null`.
    pub fn parameter(&self, name: &str) -> &Value {
        self.parameters.get(name).unwrap_or(&Value::Null)
    }

    /// The resource `logical_id`'s properties, or `Null`.
    pub fn properties(&self, logical_id: &str) -> &Value {
        self.resources.get(logical_id).map_or(&Value::Null, |resource| &resource["Properties"])
    }

    /// Every resource of type `kind`: (logical id, properties).
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"].as_str() == Some(kind))
            .filter_map(|(id, resource)| id.as_str().map(|id| (id.to_owned(), &resource["Properties"])))
    }

    /// Every EventBridge rule, with its pattern as JSON, the stack's parameters in it (`!Ref BuildProjects`) given
    /// the values [`PARAMETERS`] names.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        self.of_type("AWS::Events::Rule")
            .map(|(logical_id, properties)| {
                let pattern = resolved(&properties["EventPattern"])
                    .with_context(|| format!("rule {logical_id}'s EventPattern names an unknown parameter"))?;
                let event_pattern = serde_json::to_value(&pattern)
                    .with_context(|| format!("rule {logical_id} has no usable EventPattern"))?;
                let on_sluice_bus = match &properties["EventBusName"] {
                    Value::Null => false,
                    Value::Tagged(tagged) => tagged.value.as_str() == Some("EventBus"),
                    other => return Err(anyhow!("rule {logical_id}: unexpected EventBusName {other:?}")),
                };
                Ok(Rule { logical_id, event_pattern, on_sluice_bus })
            })
            .collect()
    }

    /// The resources (logical ids) the targets of rule `logical_id` name: the functions it wakes.
    pub fn targets(&self, logical_id: &str) -> Vec<String> {
        let targets = self.properties(logical_id)["Targets"].as_sequence().cloned().unwrap_or_default();
        targets.iter().filter_map(|target| named(&target["Arn"])).collect()
    }

    /// Every target of every rule.
    pub fn rule_targets(&self) -> Vec<RuleTarget> {
        self.of_type("AWS::Events::Rule")
            .flat_map(|(rule, properties)| {
                properties["Targets"].as_sequence().cloned().unwrap_or_default().into_iter().map(move |target| {
                    RuleTarget {
                        rule: rule.clone(),
                        id: target["Id"].as_str().unwrap_or_default().to_owned(),
                        retry_policy: target["RetryPolicy"].is_mapping(),
                        dead_letters: named(&target["DeadLetterConfig"]["Arn"]),
                    }
                })
            })
            .collect()
    }

    /// The rules (logical ids) a queue's policy lets EventBridge send from (`aws:SourceArn`).
    pub fn queue_senders(&self, queue: &str) -> Vec<String> {
        self.of_type("AWS::SQS::QueuePolicy")
            .filter(|(_, properties)| {
                properties["Queues"].as_sequence().is_some_and(|q| q.iter().any(|q| named(q).as_deref() == Some(queue)))
            })
            .flat_map(|(_, properties)| {
                let statements = properties["PolicyDocument"]["Statement"].as_sequence().cloned().unwrap_or_default();
                statements.into_iter().flat_map(|statement| {
                    let source = &statement["Condition"]["ArnEquals"]["aws:SourceArn"];
                    match source.as_sequence() {
                        Some(list) => list.iter().filter_map(named).collect::<Vec<_>>(),
                        None => named(source).into_iter().collect(),
                    }
                })
            })
            .collect()
    }

    /// Every statement of every function's inline policies.
    pub fn function_statements(&self) -> Vec<Statement> {
        fn flatten(statement: &Value, only_if: Option<String>) -> Vec<(Value, Option<String>)> {
            match statement {
                // `!If [condition, statement, !Ref AWS::NoValue]`
                Value::Tagged(tagged) if tagged.tag == "If" => match tagged.value.as_sequence() {
                    Some(branches) => {
                        let condition = branches.first().and_then(Value::as_str).map(str::to_owned);
                        branches.iter().skip(1).flat_map(|branch| flatten(branch, condition.clone())).collect()
                    }
                    None => vec![],
                },
                Value::Mapping(_) => vec![(statement.clone(), only_if)],
                _ => vec![],
            }
        }
        fn list(value: &Value) -> Vec<Value> {
            match value {
                Value::Sequence(items) => items.clone(),
                Value::Null => vec![],
                other => vec![other.clone()],
            }
        }
        self.of_type("AWS::Serverless::Function")
            .flat_map(|(function, properties)| {
                let policies = properties["Policies"].as_sequence().cloned().unwrap_or_default();
                policies
                    .into_iter()
                    .flat_map(|policy| policy["Statement"].as_sequence().cloned().unwrap_or_default())
                    .flat_map(|statement| flatten(&statement, None))
                    .map(|(statement, only_if)| Statement {
                        function: function.clone(),
                        sid: statement["Sid"].as_str().unwrap_or_default().to_owned(),
                        actions: list(&statement["Action"])
                            .iter()
                            .filter_map(|a| a.as_str().map(str::to_owned))
                            .collect(),
                        resources: list(&statement["Resource"]),
                        condition: statement["Condition"].clone(),
                        only_if,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The table `logical_id`.
    pub fn table(&self, logical_id: &str) -> Result<Table> {
        let (_, properties) = self
            .of_type("AWS::DynamoDB::Table")
            .find(|(id, _)| id == logical_id)
            .ok_or_else(|| anyhow!("template.yaml has no table {logical_id}"))?;
        let indexes = match properties["GlobalSecondaryIndexes"].as_sequence() {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .map(|index| {
                    Ok((
                        string(&index["IndexName"], "IndexName")?,
                        pairs(&index["KeySchema"], "AttributeName", "KeyType")?,
                    ))
                })
                .collect::<Result<_>>()?,
        };
        Ok(Table {
            attributes: pairs(&properties["AttributeDefinitions"], "AttributeName", "AttributeType")?,
            key_schema: pairs(&properties["KeySchema"], "AttributeName", "KeyType")?,
            indexes,
        })
    }
}
