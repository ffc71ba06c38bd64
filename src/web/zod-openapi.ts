import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

/*
 * Gives every zod schema `.openapi(name)` (a component name in the API document). Imported before any
 * schema that uses it; it adds a method to zod's prototype and changes nothing else about parsing.
 */
extendZodWithOpenApi(z);
