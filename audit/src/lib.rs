//! thingward Audit: checks over what a self-hosted fleet actually has — X.509 device and CA
//! certificates and CRLs, IoT policy documents, the MQTT broker's connection log and
//! configuration — reported as findings in AWS IoT Device Defender's shape.
