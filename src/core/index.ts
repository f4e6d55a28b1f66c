export { systemClock, type Clock, type Component, type ComponentContext, type ContextFor, type Health } from './component.js';
export { ComponentList } from './componentList.js';
export { EventBus, type OutpostEvents } from './eventBus.js';
export { Supervisor } from './supervisor.js';
