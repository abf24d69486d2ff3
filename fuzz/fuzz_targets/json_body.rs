//! Request bodies (`JsonObject::parse` and the field getters every route uses) over
//! arbitrary bytes: never panic; a body is accepted only when it is a JSON object (or
//! empty/null when optional); getters agree with `serde_json`'s view of the field.
#![no_main]

use acs_identity_server::api::JsonObject;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every field name the routes read.
const FIELDS: &[&str] = &[
    "createTokenWithScopes",
    "scopes",
    "expiresInMinutes",
    "customId",
    "token",
    "appId",
    "userId",
    "clientIds",
    "principalType",
    "tenantId",
    "objectId",
];

fuzz_target!(|data: &[u8]| {
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let json: Option<Value> = serde_json::from_slice(data).ok();
    for required in [false, true] {
        let parsed = JsonObject::parse(data, required);
        let expected = match &json {
            _ if blank => !required,
            Some(Value::Object(_)) => true,
            Some(Value::Null) => !required,
            _ => false,
        };
        assert_eq!(parsed.is_ok(), expected, "required={required}");
        let Ok(body) = parsed else { continue };
        let object = match &json {
            Some(Value::Object(m)) => m.clone(),
            _ => Default::default(),
        };
        for name in FIELDS {
            let field = object.get(*name).filter(|v| !v.is_null());
            match body.string_list(name, name) {
                Ok(Some(list)) => {
                    let items = field.and_then(Value::as_array).expect("an array");
                    assert_eq!(list.len(), items.len());
                    assert!(items.iter().zip(&list).all(|(v, s)| v.as_str() == Some(s.as_str())));
                }
                Ok(None) => assert!(field.is_none()),
                Err(_) => assert!(field.is_some()),
            }
            match body.int32(name, name) {
                Ok(Some(n)) => {
                    assert!(i32::try_from(n).is_ok());
                    assert_eq!(field.and_then(Value::as_i64), Some(n));
                }
                Ok(None) => assert!(field.is_none()),
                Err(_) => assert!(field.is_some()),
            }
            match body.string(name, name) {
                Ok(Some(s)) => assert_eq!(field.and_then(Value::as_str), Some(s.as_str())),
                Ok(None) => assert!(field.is_none()),
                Err(_) => assert!(field.is_some()),
            }
        }
    }
});
