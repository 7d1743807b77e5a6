//! The JSON-RPC 1.0 messages of the control socket.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Command name.
    pub method: String,
    /// Arguments; unixctl only uses strings.
    pub params: Vec<Value>,
    /// Echoed back in the reply so a client can match answers to questions.
    pub id: Value,
}

/// A reply: exactly one of `result` and `error` is non-null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Output text of a successful command.
    pub result: Option<String>,
    /// Why the command failed.
    pub error: Option<String>,
    /// The request's id (null when the request could not be read).
    pub id: Value,
}

impl Reply {
    /// A reply carrying a command's outcome.
    pub fn from_outcome(id: Value, outcome: Result<String, String>) -> Reply {
        match outcome {
            Ok(text) => Reply {
                result: Some(text),
                error: None,
                id,
            },
            Err(text) => Reply {
                result: None,
                error: Some(text),
                id,
            },
        }
    }
}

/// Splits a JSON value that should be a request into (id, method, string params), or says
/// what is wrong with it.
pub(crate) fn decode_request(v: Value) -> (Value, Result<(String, Vec<String>), String>) {
    let Value::Object(mut obj) = v else {
        return (Value::Null, Err("request is not a JSON object".into()));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return (id, Err("\"method\" is not a string".into())),
        None => return (id, Err("request has no \"method\"".into())),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s),
                    other => {
                        return (
                            id,
                            Err(format!("params[{i}] is {other}, expected a string")),
                        )
                    }
                }
            }
            out
        }
        Some(_) => return (id, Err("\"params\" is not an array".into())),
    };
    (id, Ok((method, params)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_shapes_match_unixctl() {
        let ok = serde_json::to_value(Reply::from_outcome(json!(3), Ok("x\n".into()))).unwrap();
        assert_eq!(ok, json!({"result": "x\n", "error": null, "id": 3}));
        let err = serde_json::to_value(Reply::from_outcome(json!(0), Err("bad".into()))).unwrap();
        assert_eq!(err, json!({"result": null, "error": "bad", "id": 0}));
    }

    #[test]
    fn decode_checks_shape() {
        let (id, r) = decode_request(json!({"id": 7, "method": "m", "params": ["a", "b"]}));
        assert_eq!(id, json!(7));
        assert_eq!(
            r.unwrap(),
            ("m".to_string(), vec!["a".to_string(), "b".to_string()])
        );
        assert!(decode_request(json!([1]))
            .1
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(decode_request(json!({"id": 1}))
            .1
            .unwrap_err()
            .contains("no \"method\""));
        let (id, r) = decode_request(json!({"id": 1, "method": "m", "params": [1]}));
        assert_eq!(id, json!(1));
        assert!(r.unwrap_err().contains("params[0] is 1"));
    }
}
