export { MqttLink, type MqttLinkOptions, type MessageHandler, type PublishOptions } from './mqttLink.js';
export { assertTopic, isSafeTopic, matches } from './topics.js';
export { openBroker, type BrokerEvent, type BrokerOptions, type MqttClient } from './brokerClient.js';
export { redactUrl, loginRefusal, brokerConnectError } from './brokerErrors.js';
export { MAX_INBOUND_BYTES, ReactionLimit } from './inboundLimits.js';
