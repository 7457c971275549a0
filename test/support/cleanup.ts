import { afterAll } from 'vitest';
import { removeTempDirs } from './cli.js';

// A setup file of every test file: whatever temporary directory a file made goes when it ends.
afterAll(removeTempDirs);
