#!/usr/bin/env node
// The installed command (`model-streams`): runs the TypeScript command line through tsx's loader,
// so the package needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
