import type { MqttLink } from '../mqtt/index.js';

/** Home Assistant publishes `online` here when it starts: discovery is published again then. */
export const HA_STATUS_TOPIC = 'homeassistant/status';

const objectId = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

/**
 * Retained discovery configs that make this node one device in Home Assistant: its temperature and governor
 * level, and per camera the frame rate and the last text or labels read. Every entity's availability follows the
 * node's status topic (its last will flips them all to unavailable).
 */
export function discoveryMessages(link: MqttLink, cameras: string[], version: string): { topic: string; payload: string }[] {
  const node = objectId(`outpost_${link.deviceId}`);
  const device = { identifiers: [node], name: link.deviceId, manufacturer: 'Outpost', model: 'edge AI agent', sw_version: version };
  const availability = {
    availability: [{ topic: link.statusTopic, value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline' }],
  };
  const telemetry = link.topic('telemetry');
  const sensor = (id: string, name: string, template: string, extra: Record<string, unknown> = {}) => ({
    topic: `homeassistant/sensor/${node}/${objectId(id)}/config`,
    payload: JSON.stringify({
      name,
      unique_id: `${node}_${objectId(id)}`,
      object_id: `${node}_${objectId(id)}`,
      state_topic: telemetry,
      value_template: template,
      device,
      ...availability,
      ...extra,
    }),
  });
  // telemetry leaves out nulls and empty lists: `default` stands in for them
  return [
    sensor('temperature', 'Temperature', '{{ value_json.power.governor.temperatureC | default(none) if value_json.power else none }}', {
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
    }),
    sensor('governor_level', 'Governor level', '{{ value_json.power.governor.level if value_json.power else "nominal" }}'),
    ...cameras.flatMap((c) => [
      sensor(`${c}_fps`, `${c} fps`, `{{ value_json.cameras['${c}'].fps }}`, { unit_of_measurement: 'fps', state_class: 'measurement' }),
      sensor(`${c}_last`, `${c} last read`, `{{ value_json.cameras['${c}'].last | default([]) | join(' | ') }}`),
    ]),
  ];
}
