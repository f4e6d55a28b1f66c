export { MqttLink, type MqttLinkOptions, type MessageHandler, type PublishOptions } from './mqttLink.js';
export { assertTopic, isSafeTopic, matches } from './topics.js';
export { openBroker, redactUrl, type BrokerEvent, type BrokerOptions, type MqttClient } from './brokerClient.js';
