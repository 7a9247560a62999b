export * from './types';
export * from './duration';
export * from './progress';
export * from './input';
export * from './report';
export * from './vpsienode';
export * from './vm';
export * from './evidence';
