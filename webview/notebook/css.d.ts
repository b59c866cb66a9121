/** The renderer bundle imports its stylesheets as text (esbuild's text loader) and adopts them in each output's shadow root. */
declare module '*.css' {
  const text: string;
  export default text;
}
